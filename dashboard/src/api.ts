// How the page talks to the gateway: queries over HTTP and subscriptions over graphql-ws, each sent by
// its persisted documentId (the manifest `npm run codegen` writes), with the caller's token.
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient, type Client, type SubscribePayload } from 'graphql-ws';

/** Where the live connection stands, as the page states it. */
export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline';

/** A GraphQL error as the gateway sends it. */
interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string };
}

/** A failed operation; `code` is the gateway's `extensions.code` (UNAUTHENTICATED, FORBIDDEN, ...). */
export class ApiError extends Error {
  readonly code: string | undefined;

  constructor(message: string, code: string | undefined) {
    super(message);
    this.code = code;
  }
}

/** The manifest id the client preset put on a generated document. */
function documentIdOf(document: TypedDocumentNode<unknown, never>): string {
  const hash = (document as { __meta__?: { hash?: unknown } }).__meta__?.hash;
  if (typeof hash !== 'string') throw new Error('expected a persisted document (run npm run codegen)');
  return hash;
}

const errorOf = (errors: readonly GraphQLErrorBody[]) =>
  new ApiError(errors.map((e) => e.message).join('; '), errors[0]?.extensions?.code);

/** Runs a query over HTTP POST /graphql; throws an ApiError for GraphQL errors. */
export async function runQuery<R, V>(
  token: string,
  document: TypedDocumentNode<R, V>,
  variables: V,
): Promise<R> {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ documentId: documentIdOf(document), variables }),
  });
  const body = (await response.json().catch(() => ({}))) as { data?: R | null; errors?: GraphQLErrorBody[] };
  if (body.errors?.length) throw errorOf(body.errors);
  if (!body.data) throw new ApiError(`the gateway answered ${response.status} without data`, undefined);
  return body.data;
}

/** Receives one subscription's results. */
export interface SubscriptionSink<R> {
  next(data: R): void;
  error?(error: ApiError): void;
}

/** The page's one WebSocket to the gateway, reopened whenever it drops. */
export interface LiveConnection {
  /**
   * Subscribes until the returned function is called. With `cursorOf`, every re-subscription after a
   * reconnect passes the last cursor delivered as `after`, so the stream resumes with nothing missed.
   */
  subscribe<R, V extends Record<string, unknown>>(
    document: TypedDocumentNode<R, V>,
    variables: V,
    sink: SubscriptionSink<R>,
    cursorOf?: (data: R) => string | undefined,
  ): () => void;
  close(): void;
}

// Reconnect after 0.5 s, doubling up to 10 s, with jitter so that restarted gateways are not stampeded.
const retryWait = (retries: number) =>
  new Promise<void>((resolve) =>
    setTimeout(resolve, Math.min(10_000, 500 * 2 ** retries) * (0.75 + Math.random() / 2)),
  );

/** Opens the live connection; `onState` hears every change of state, `onReconnected` each reconnect. */
export function connectLive(
  token: string,
  onState: (state: ConnectionState, detail?: string) => void,
  onReconnected: () => void,
): LiveConnection {
  // After close(), the socket's last events are no news to the page.
  let closed = false;
  const report = (state: ConnectionState, detail?: string) => {
    if (!closed) onState(state, detail);
  };
  const url = new URL('/graphql', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const client: Client = createClient({
    url: url.href,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait,
    onNonLazyError: (error) => report('offline', describeClose(error)),
    on: {
      connecting: (retrying) => report(retrying || !navigator.onLine ? 'reconnecting' : 'connecting'),
      connected: (_socket, _payload, retrying) => {
        report('live');
        if (retrying) onReconnected();
      },
      closed: (event) => {
        // 4403: the token was refused or expired; retrying cannot help, a new token is needed.
        if ((event as CloseEvent).code === 4403) {
          report('offline', 'the gateway refused the token: sign in again');
          client.terminate();
          return;
        }
        report(navigator.onLine ? 'reconnecting' : 'offline');
      },
    },
  });

  return {
    subscribe<R, V extends Record<string, unknown>>(
      document: TypedDocumentNode<R, V>,
      variables: V,
      sink: SubscriptionSink<R>,
      cursorOf?: (data: R) => string | undefined,
    ) {
      // graphql-ws sends this same payload object again on every reconnect: updating `after` in place
      // is what makes the re-subscription resume from the last cursor.
      const resumable: Record<string, unknown> = { ...variables };
      const payload: SubscribePayload & { documentId: string } = {
        query: '',
        documentId: documentIdOf(document),
        variables: resumable,
      };
      return client.subscribe<R>(payload, {
        next: (result) => {
          if (result.errors?.length) {
            sink.error?.(errorOf(result.errors));
            return;
          }
          if (!result.data) return;
          const cursor = cursorOf?.(result.data);
          if (cursor) resumable['after'] = cursor;
          sink.next(result.data);
        },
        error: (error) => {
          const errors = Array.isArray(error) ? (error as GraphQLErrorBody[]) : undefined;
          sink.error?.(errors ? errorOf(errors) : new ApiError(describeClose(error), undefined));
        },
        complete: () => undefined,
      });
    },
    close() {
      closed = true;
      void client.dispose();
    },
  };
}

/** A line about why the socket gave up. */
function describeClose(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code, reason } = error as CloseEvent;
    return `the connection closed (${code}${reason ? `: ${reason}` : ''})`;
  }
  return error instanceof Error ? error.message : 'the connection failed';
}
