// Subgraph-served subscriptions: the gateway holds one graphql-ws connection per subgraph and
// credential, multiplexing every subscription of that credential over it. Subgraphs verify the token
// themselves, and graphql-ws authenticates per connection, hence one connection per credential.
import { createClient, type Client, type ExecutionResult, type Sink } from 'graphql-ws';
import WebSocket from 'ws';
import type { Logger } from '../../lib/logger.ts';

interface Connection {
  client: Client;
  subscriptions: number;
}

/** graphql-ws connections to subgraphs, opened on demand and closed with their last subscription. */
export class UpstreamSubscriptions {
  private readonly connections = new Map<string, Connection>();
  private readonly urls: () => Map<string, string>;
  private readonly logger: Logger;

  constructor(urls: () => Map<string, string>, logger: Logger) {
    this.urls = urls;
    this.logger = logger;
  }

  /** Subscribes on the subgraph's WebSocket; returns the unsubscribe function. */
  subscribe(
    subgraph: string,
    authorization: string | undefined,
    payload: { query: string; variables?: Record<string, unknown>; operationName?: string },
    sink: Sink<ExecutionResult>,
  ): () => void {
    const key = `${subgraph} ${authorization ?? ''}`;
    let connection = this.connections.get(key);
    if (!connection) {
      const url = this.urls().get(subgraph);
      if (!url) throw new Error(`no routing URL for subgraph ${subgraph}`);
      connection = {
        subscriptions: 0,
        client: createClient({
          url: url.replace(/^http/, 'ws'),
          webSocketImpl: WebSocket,
          connectionParams: authorization ? { authorization } : {},
          lazy: true,
          keepAlive: 15_000,
          retryAttempts: 10,
          shouldRetry: () => true,
          on: {
            error: (error) =>
              this.logger.warn({ err: error, subgraph }, 'subgraph subscription socket error'),
          },
        }),
      };
      this.connections.set(key, connection);
    }
    const current = connection;
    current.subscriptions++;
    const unsubscribe = current.client.subscribe(payload, sink);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      unsubscribe();
      if (--current.subscriptions === 0 && this.connections.get(key) === current) {
        this.connections.delete(key);
        void current.client.dispose();
      }
    };
  }

  close(): void {
    for (const { client } of this.connections.values()) void client.dispose();
    this.connections.clear();
  }
}
