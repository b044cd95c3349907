// Consumer setup against a nats-server of this file's own, paused (SIGSTOP) as an overloaded machine or a
// stalled server would leave it: the other suites' server is not disturbed.
import { jetstreamManager, JetStreamApiError } from '@nats-io/jetstream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, type ServerHandle } from '../scripts/localServices.ts';
import { connectBroker, ensureStreams, type Broker } from './connection.ts';
import { consumers, ensureConsumer } from './consumers.ts';
import { Stream } from './subjects.ts';

let dir: string;
let nats: ServerHandle;
let broker: Broker;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pulsegraph-consumers-'));
  nats = await startNats({ storeDir: join(dir, 'nats') });
  broker = await connectBroker(nats.url, 'consumers-test');
  await ensureStreams(broker.nc);
});

afterAll(async () => {
  await broker?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('ensureConsumer', () => {
  it('creates the consumer once nats-server answers again after stalling past the request timeout', async () => {
    process.kill(nats.pid!, 'SIGSTOP');
    const started = Date.now();
    const ensured = ensureConsumer(broker.nc, consumers.detector);
    await new Promise((resolve) => setTimeout(resolve, 6_500)); // past the 5 s of one JetStream request
    process.kill(nats.pid!, 'SIGCONT');
    await ensured;
    expect(Date.now() - started).toBeGreaterThan(6_000);
    const jsm = await jetstreamManager(broker.nc);
    const info = await jsm.consumers.info(Stream.KPI, consumers.detector.config.durable_name);
    expect(info.config.max_deliver).toBe(5);
  }, 30_000);

  it('fails at once on an answer that is an error, without retrying it', async () => {
    const started = Date.now();
    const missing = { stream: 'NO_SUCH_STREAM', config: { durable_name: 'nobody' } } as never;
    await expect(ensureConsumer(broker.nc, missing)).rejects.toBeInstanceOf(JetStreamApiError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
