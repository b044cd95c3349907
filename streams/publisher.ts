import { JetStreamApiError, type ApiError } from '@nats-io/jetstream';
import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import {
  ATTR_COMPONENT,
  extractTraceContext,
  injectTraceContext,
  SpanKind,
  withSpan,
  type Context,
} from '../lib/telemetry.ts';

/** One message to publish with its deduplication id. */
export interface OutgoingMessage {
  subject: string;
  body: unknown;
  msgID: string;
}

/** How many publishes may await their JetStream ack at once: batches pipeline, memory stays bounded. */
export const MAX_IN_FLIGHT = 256;

/** A JetStream publish ack: where the stream stored the message, or why it did not. */
interface PubAck {
  seq?: number;
  duplicate?: boolean;
  error?: ApiError;
}

/**
 * Publishes every message with a bounded number of acks outstanding (never one round trip per
 * message), and resolves once JetStream has stored them all; `duplicate[i]` is true when the stream
 * already had message i's id in its duplicate window. Rejects on the first failure, or when no ack
 * arrives for `timeoutMs`; messages already stored stay stored, and a retry with the same ids is
 * deduplicated.
 *
 * This is JetStream's asynchronous publish as nats.go's PublishAsync does it: each message a core
 * publish whose reply subject names it, every ack arriving on one subscription of the connection.
 * nats.js's `js.publish` makes each message a request with a timer, a promise chain and a cancellation
 * error of its own: three times the CPU per message (docs/performance.md, ingest).
 */
export function publishAll(
  nc: NatsConnection,
  messages: readonly OutgoingMessage[],
  options: { timeoutMs?: number; maxInFlight?: number } = {},
): Promise<{ duplicate: boolean[]; seq: number[] }> {
  // One span per batch; each message carries its context in its headers (W3C traceparent), so that
  // whoever consumes it continues this trace.
  return withSpan(
    'jetstream publish',
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        [ATTR_COMPONENT]: 'jetstream',
        'messaging.system': 'nats',
        'messaging.destination.name': messages[0]?.subject ?? '',
        'messaging.batch.message_count': messages.length,
      },
    },
    () => publishBatch(nc, messages, options),
  );
}

/** The trace context a NATS message was published in (its headers); the root context without one. */
export function traceContextOfMessage(message: { headers?: MsgHdrs }): Context {
  return extractTraceContext((key) => message.headers?.get(key) || undefined);
}

/** NATS headers carrying the active trace context (W3C traceparent), or undefined outside any trace. */
export function traceHeaders(): MsgHdrs | undefined {
  let carried: MsgHdrs | undefined;
  injectTraceContext((key, value) => (carried ??= headers()).set(key, value));
  return carried;
}

function publishBatch(
  nc: NatsConnection,
  messages: readonly OutgoingMessage[],
  options: { timeoutMs?: number; maxInFlight?: number },
): Promise<{ duplicate: boolean[]; seq: number[] }> {
  const duplicate = new Array<boolean>(messages.length).fill(false);
  const seq = new Array<number>(messages.length).fill(0);
  if (!messages.length) return Promise.resolve({ duplicate, seq });
  const maxInFlight = Math.max(1, options.maxInFlight ?? MAX_IN_FLIGHT);
  // The batch's trace context, read once and copied into every message's headers.
  const trace: Array<[string, string]> = [];
  injectTraceContext((key, value) => void trace.push([key, value]));
  return new Promise((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const settle = (error?: Error) => {
      clearTimeout(timer);
      batch.close();
      if (error) reject(error);
      else resolve({ duplicate, seq });
    };
    const batch = acksOf(nc).open((index, message) => {
      // Not one of ours (an index this batch never sent), or an ack seen twice.
      if (!Number.isInteger(index) || index < 0 || index >= sent || seq[index] || duplicate[index]) return;
      const ack = readAck(message, messages[index]!.subject);
      if (ack instanceof Error) return settle(ack);
      seq[index] = ack.seq;
      duplicate[index] = ack.duplicate === true;
      timer.refresh();
      if (++acked === messages.length) settle();
      else pump();
    });
    const timeoutMs = options.timeoutMs ?? 5_000;
    const timer = setTimeout(
      () =>
        settle(
          new Error(
            `JetStream did not acknowledge ${messages.length - acked} message(s) within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    const pump = () => {
      try {
        for (; sent < messages.length && sent - acked < maxInFlight; sent++) {
          const message = messages[sent]!;
          const carried = headers();
          carried.set('Nats-Msg-Id', message.msgID);
          for (const [key, value] of trace) carried.set(key, value);
          nc.publish(message.subject, JSON.stringify(message.body), {
            reply: batch.replySubject(sent),
            headers: carried,
          });
        }
      } catch (error) {
        settle(error as Error); // the connection is closed or draining
      }
    };
    pump();
  });
}

/** A publish's ack, or why it says its message was not stored. */
function readAck(message: Msg, subject: string): { seq: number; duplicate?: boolean } | Error {
  // nats-server answers a publish that no stream listens on with a bare 503 status.
  if (message.data.length === 0 && message.headers?.code === 503)
    return new Error(`no JetStream stream takes subject ${subject}`);
  let ack: PubAck;
  try {
    ack = message.json<PubAck>();
  } catch {
    return new Error(`JetStream answered a publish to ${subject} with something other than an ack`);
  }
  if (ack.error) return new JetStreamApiError(ack.error);
  if (typeof ack.seq !== 'number')
    return new Error(`JetStream answered a publish to ${subject} without a sequence`);
  return { seq: ack.seq, duplicate: ack.duplicate };
}

/** One connection's acks: a single wildcard subscription, each batch a numbered token under it. */
interface AckRouter {
  open(onAck: (index: number, message: Msg) => void): { replySubject(index: number): string; close(): void };
}

const routers = new WeakMap<NatsConnection, AckRouter>();

function acksOf(nc: NatsConnection): AckRouter {
  let router = routers.get(nc);
  if (!router) routers.set(nc, (router = createAckRouter(nc)));
  return router;
}

function createAckRouter(nc: NatsConnection): AckRouter {
  const prefix = createInbox();
  const batches = new Map<number, (index: number, message: Msg) => void>();
  let nextBatch = 0;
  // Reply subjects are `<prefix>.<batch>.<index>`.
  nc.subscribe(`${prefix}.*.*`, {
    callback: (error, message) => {
      if (error) return; // the connection is closing: every open batch times out or has failed to publish
      const rest = message.subject.slice(prefix.length + 1);
      const dot = rest.indexOf('.');
      batches.get(Number(rest.slice(0, dot)))?.(Number(rest.slice(dot + 1)), message);
    },
  });
  return {
    open(onAck) {
      const id = nextBatch++;
      batches.set(id, onAck);
      return { replySubject: (index) => `${prefix}.${id}.${index}`, close: () => void batches.delete(id) };
    },
  };
}
