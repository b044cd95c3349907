import type { JetStreamClient } from '@nats-io/jetstream';

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
export async function publishAll(
  js: JetStreamClient,
  messages: readonly OutgoingMessage[],
  options: { timeoutMs?: number; maxInFlight?: number } = {},
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
      });
      duplicate[index] = ack.duplicate;
      seq[index] = ack.seq;
    }
  };
  const lanes = Math.min(options.maxInFlight ?? MAX_IN_FLIGHT, messages.length);
  await Promise.all(Array.from({ length: lanes }, lane));
  return { duplicate, seq };
}
