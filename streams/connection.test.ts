// Connecting at start while nats-server is not up yet (a worker started before it, or during its restart):
// connectBroker keeps trying and connects once the server listens, against a real nats-server.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/network.ts';
import { startNats, type ServerHandle } from '../scripts/localServices.ts';
import { connectBroker, type Broker } from './connection.ts';

let dir: string | undefined;
let nats: ServerHandle | undefined;
let broker: Broker | undefined;

afterAll(async () => {
  await broker?.close();
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('connectBroker', () => {
  it('keeps trying while nats-server is not up yet, and connects once it listens', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pulsegraph-connection-'));
    const port = await freePort();
    const retries: unknown[] = [];
    const logger = { warn: (fields: unknown) => retries.push(fields) };
    const connecting = connectBroker(
      `nats://127.0.0.1:${port}`,
      'connection-test',
      logger as unknown as Parameters<typeof connectBroker>[2],
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    nats = await startNats({ storeDir: join(dir, 'nats'), port });
    broker = await connecting;
    expect(retries.length).toBeGreaterThan(0);
    expect(broker.nc.isClosed()).toBe(false);
    // The connection works: a JetStream-less request-reply round trip through the server.
    const subscription = broker.nc.subscribe('connection.test', {
      callback: (_error, message) => {
        message.respond('pong');
      },
    });
    const reply = await broker.nc.request('connection.test', 'ping', { timeout: 2_000 });
    expect(reply.string()).toBe('pong');
    subscription.unsubscribe();
  });
});
