// Waiting for a durable JetStream consumer to catch up: the one wait the suites share.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { expect } from 'vitest';

/** How long to wait, how often to look, and (optionally) the stream sequence the consumer must have acked. */
export interface DrainOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Also wait until the ack floor reaches this stream sequence (a message published before the wait). */
  ackedThrough?: number;
}

/**
 * Polls until the durable consumer has nothing pending and nothing unacknowledged. A timeout names its
 * last state (pending, ack pending, redelivered, ack floor), to tell a stuck handler from lost acks.
 * Reconnects as often as it takes: fault suites restart nats-server while it waits.
 */
export async function waitForConsumerDrained(
  natsUrl: string,
  stream: string,
  durable: string,
  options: DrainOptions = {},
): Promise<void> {
  const { timeoutMs = 30_000, intervalMs = 100, ackedThrough } = options;
  const nc = await connect({ servers: natsUrl, maxReconnectAttempts: -1 });
  try {
    const jsm = await jetstreamManager(nc);
    let state = 'no answer from nats-server';
    await expect
      .poll(
        async () => {
          const info = await jsm.consumers.info(stream, durable).catch(() => undefined);
          if (!info) return false;
          state = `pending ${info.num_pending}, ack pending ${info.num_ack_pending}, redelivered ${info.num_redelivered}, ack floor ${info.ack_floor.stream_seq}`;
          const drained = info.num_pending === 0 && info.num_ack_pending === 0;
          return drained && (ackedThrough === undefined || info.ack_floor.stream_seq >= ackedThrough);
        },
        { timeout: timeoutMs, interval: intervalMs },
      )
      .toBe(true)
      .catch((error: unknown) => {
        throw new Error(`${durable} on ${stream} did not drain in ${timeoutMs / 1000} s (${state})`, {
          cause: error,
        });
      });
  } finally {
    await nc.close();
  }
}
