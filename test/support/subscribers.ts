// Test clients for the gateway's subscriptions: graphql-ws over a real WebSocket and SSE over a real
// HTTP stream, each collecting what it receives; and a stand-in KPI calculator that publishes values.
import { jetstream } from '@nats-io/jetstream';
import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { envelope } from '../../streams/envelope.ts';
import { publishAll } from '../../streams/publisher.ts';
import { subjects } from '../../streams/subjects.ts';
import { metricOf } from '../../subgraphs/metrics/metricShape.ts';

/** What a subscriber has received so far. */
export interface Received<T> {
  values: T[];
  errors: unknown[];
  /** SSE only: the id of each event. */
  ids: string[];
  completed: boolean;
  /** SSE only: the stream has ended, with or without `complete` (without: the server asks for a resume). */
  ended?: boolean;
  /** Resolves once `count` values arrived (rejects after `timeoutMs`). */
  until(count: number, timeoutMs?: number): Promise<T[]>;
  close(): void;
}

function receiver<T>(close: () => void): Received<T> {
  const received: Received<T> = {
    values: [],
    errors: [],
    ids: [],
    completed: false,
    async until(count, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.values.length < count) {
        if (received.errors.length)
          throw new Error(`subscription failed: ${JSON.stringify(received.errors)}`);
        if (Date.now() > deadline) {
          throw new Error(
            `got ${received.values.length} of ${count} values: ${JSON.stringify(received.values)}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return received.values;
    },
    close,
  };
  return received;
}

/** A graphql-ws client of the gateway (http URL of /graphql) with the token in connectionParams. */
export function wsClient(graphqlUrl: string, token?: string, options: { retry?: boolean } = {}): Client {
  return createClient({
    url: graphqlUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: options.retry ? 20 : 0,
    retryWait: async () => new Promise((resolve) => setTimeout(resolve, 200)),
    lazy: true,
  });
}

/** Subscribes over graphql-ws and collects the `field` of each result. */
export function wsSubscribe<T>(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
  field?: string,
): Received<T> {
  let stop = () => undefined as void;
  const received = receiver<T>(() => stop());
  stop = client.subscribe<Record<string, T>>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) received.errors.push(...result.errors);
        else received.values.push(field ? result.data![field]! : (result.data as T));
      },
      error: (error) => received.errors.push(...(Array.isArray(error) ? (error as unknown[]) : [error])),
      complete: () => (received.completed = true),
    },
  );
  return received;
}

/** Subscribes over SSE (distinct connections) and collects the `field` of each `next` event and its id. */
export function sseSubscribe<T>(
  graphqlUrl: string,
  token: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
  options: { field?: string; lastEventId?: string } = {},
): Received<T> & { status: Promise<number> } {
  const controller = new AbortController();
  const received = receiver<T>(() => controller.abort());
  const status = fetch(graphqlUrl, {
    method: 'POST',
    signal: controller.signal,
    headers: {
      accept: 'text/event-stream',
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}),
    },
    body: JSON.stringify({ query, variables }),
  }).then((response) => {
    if (response.ok)
      void readEvents(response, received, options.field)
        .catch(() => undefined)
        .finally(() => (received.ended = true));
    else
      void response
        .json()
        .then((body: { errors?: unknown[] }) => received.errors.push(...(body.errors ?? [body])));
    return response.status;
  });
  return Object.assign(received, { status });
}

async function readEvents<T>(response: Response, received: Received<T>, field?: string): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = Object.fromEntries(
        block
          .split('\n')
          .filter((line) => line && !line.startsWith(':'))
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trimStart()]),
      );
      if (lines['event'] === 'complete') received.completed = true;
      if (lines['event'] !== 'next') continue;
      const result = JSON.parse(lines['data'] as string) as { data?: Record<string, T>; errors?: unknown[] };
      if (result.errors) received.errors.push(...result.errors);
      else received.values.push(field ? result.data![field]! : (result.data as T));
      if (lines['id']) received.ids.push(lines['id']);
    }
  }
}

/** Publishes KPI values on the KPI stream as the calculator does; returns their stream sequences. */
export async function publishKpiValues(
  natsUrl: string,
  tenant: string,
  values: Array<{ code: string; value: number | null; dimensions?: Record<string, string> }>,
): Promise<number[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const js = jetstream(nc);
    const seqs: number[] = [];
    for (const { code, value, dimensions = null } of values) {
      const at = new Date();
      const metric =
        value === null
          ? null
          : metricOf({
              name: code,
              aggregation: 'COUNT',
              unit: null,
              interval: '24h',
              value,
              at,
              dimensions,
            });
      const payload = { kpi: { code }, value, at: at.toISOString(), window: '24h', dimensions, metric };
      const ack = await js.publish(
        subjects.kpi(tenant, code),
        JSON.stringify(envelope({ eventType: 'kpi.value', source: 'test', tenant, payload })),
      );
      seqs.push(ack.seq);
    }
    return seqs;
  } finally {
    await nc.close();
  }
}

/** Publishes insights on the INSIGHTS stream as the detector does, in order, each with a message id of its own. */
export async function publishInsights(
  natsUrl: string,
  tenant: string,
  insights: Array<{ context: string } & Record<string, unknown>>,
): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    await publishAll(
      nc,
      insights.map((insight) => ({
        subject: subjects.insight(tenant, insight.context),
        body: envelope({ eventType: 'insight', source: 'test', tenant, payload: insight }),
        msgID: randomUUID(),
      })),
    );
  } finally {
    await nc.close();
  }
}

/** Publishes one insight on the INSIGHTS stream as the detector does. */
export const publishInsight = (
  natsUrl: string,
  tenant: string,
  insight: { context: string } & Record<string, unknown>,
): Promise<void> => publishInsights(natsUrl, tenant, [insight]);

/**
 * A bare graphql-transport-ws subscriber over `ws` whose socket can stop reading (pause), to play a
 * slow client; next() resolves with the data of each `next` message in turn.
 */
export async function rawSubscriber(graphqlUrl: string, token: string, query: string) {
  const socket = new WebSocket(graphqlUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const inbox: unknown[] = [];
  let wake: (() => void) | undefined;
  socket.on('message', (raw: Buffer) => {
    const message = JSON.parse(raw.toString()) as { type: string; payload?: { data?: unknown } };
    if (message.type === 'connection_ack') {
      socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
    } else if (message.type === 'next') {
      inbox.push(message.payload?.data);
      wake?.();
    }
  });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
  const tcp = (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
  );
  return {
    /** The close code and reason, once the socket has closed. */
    closed,
    /** How many `next` messages have arrived and not been read with next(). */
    get unread() {
      return inbox.length;
    },
    async next(): Promise<unknown> {
      while (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return inbox.shift();
    },
    pause: () => tcp.pause(),
    resume: () => tcp.resume(),
    close: () => socket.terminate(),
  };
}

/** The value of one Prometheus series (name and labels, as printed) on a gateway's /metrics; 0 when absent. */
export async function gatewayMetric(graphqlUrl: string, series: string): Promise<number> {
  const text = await (await fetch(new URL('/metrics', graphqlUrl))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return Number(line?.split(' ')[1] ?? 0);
}
