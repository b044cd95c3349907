// Consumer setup against a nats-server of this file's own, paused (SIGSTOP) as an overloaded machine or a
// stalled server would leave it: the other suites' server is not disturbed.
import { AckPolicy, DeliverPolicy, jetstreamManager, JetStreamApiError } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { useOwnNats } from '../test/support/ownNats.ts';
import { createLogger } from '../lib/logger.ts';
import { consumers, ensureConsumer, pullBatches, type DurableConsumer } from './consumers.ts';
import { Stream } from './subjects.ts';

const own = useOwnNats('consumers');

describe('ensureConsumer', () => {
  it('creates the consumer once nats-server answers again after stalling past the request timeout', async () => {
    process.kill(own.nats.pid!, 'SIGSTOP');
    const started = Date.now();
    const ensured = ensureConsumer(own.broker.nc, consumers.detector);
    await new Promise((resolve) => setTimeout(resolve, 6_500)); // past the 5 s of one JetStream request
    process.kill(own.nats.pid!, 'SIGCONT');
    await ensured;
    expect(Date.now() - started).toBeGreaterThan(6_000);
    const jsm = await jetstreamManager(own.broker.nc);
    const info = await jsm.consumers.info(Stream.KPI, consumers.detector.config.durable_name);
    expect(info.config.max_deliver).toBe(5);
  }, 30_000);

  it('fails at once on an answer that is an error, without retrying it', async () => {
    const started = Date.now();
    const missing = { stream: 'NO_SUCH_STREAM', config: { durable_name: 'nobody' } } as never;
    await expect(ensureConsumer(own.broker.nc, missing)).rejects.toBeInstanceOf(JetStreamApiError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('pullBatches', () => {
  it('handles what a fetch delivered before it failed (nats-server stalled past two heartbeats) at once, not after ack_wait', async () => {
    const consumer: DurableConsumer = {
      stream: Stream.EVENTS,
      config: {
        durable_name: 'pull-test',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: 'events.pulltest.>',
        ack_wait: nanos(60_000),
      },
    };
    await ensureConsumer(own.broker.nc, consumer);
    for (const n of [0, 1, 2])
      await own.broker.js.publish('events.pulltest.ping', `m${n}`, { msgID: `pull-${n}` });
    const logLines: string[] = [];
    const logs = { write: (line: string) => void logLines.push(line) };
    const handled: string[] = [];
    const stop = new AbortController();
    // expires 1 s: nats.js expects an idle heartbeat every 500 ms and fails the fetch after two are missed.
    const loop = pullBatches(
      own.broker.js,
      consumer,
      {
        batch: 100,
        expiresMs: 1_000,
        signal: stop.signal,
        logger: createLogger('test', 'warn', 'json', logs),
      },
      (messages) => {
        for (const message of messages) {
          handled.push(message.string());
          message.ack();
        }
        return Promise.resolve();
      },
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 200)); // the fetch holds the 3 messages, waits for more
      process.kill(own.nats.pid!, 'SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      process.kill(own.nats.pid!, 'SIGCONT');
      // Handled within seconds; dropped, they would come back only after ack_wait (60 s).
      await expect.poll(() => handled, { timeout: 10_000 }).toEqual(['m0', 'm1', 'm2']);
      expect(logLines.join('')).toContain('"received":3');
    } finally {
      process.kill(own.nats.pid!, 'SIGCONT');
      stop.abort();
      await loop;
    }
  }, 30_000);
});
