import type { JetStreamClient } from '@nats-io/jetstream';
import { headers, type MsgHdrs } from '@nats-io/transport-node';
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

/**
 * Publishes every message with a bounded number of acks outstanding (never one round trip per
 * message), and resolves once JetStream has stored them all; `duplicate[i]` is true when the stream
 * already had message i's id in its duplicate window. Rejects on the first failure; messages already
 * stored stay stored, and a retry with the same ids is deduplicated.
 */
export function publishAll(
  js: JetStreamClient,
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
    () => publishBatch(js, messages, traceHeaders, options),
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

async function publishBatch(
  js: JetStreamClient,
  messages: readonly OutgoingMessage[],
  headersOf: () => MsgHdrs | undefined,
  options: { timeoutMs?: number; maxInFlight?: number },
): Promise<{ duplicate: boolean[]; seq: number[] }> {
  const duplicate = new Array<boolean>(messages.length).fill(false);
  const seq = new Array<number>(messages.length).fill(0);
  let next = 0;
  const lane = async () => {
    while (next < messages.length) {
      const index = next++;
      const message = messages[index]!;
      const ack = await js.publish(message.subject, JSON.stringify(message.body), {
        msgID: message.msgID,
        timeout: options.timeoutMs ?? 5_000,
        headers: headersOf(),
      });
      duplicate[index] = ack.duplicate;
      seq[index] = ack.seq;
    }
  };
  const lanes = Math.min(options.maxInFlight ?? MAX_IN_FLIGHT, messages.length);
  await Promise.all(Array.from({ length: lanes }, lane));
  return { duplicate, seq };
}
