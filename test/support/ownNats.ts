// A nats-server of one test file's own, for tests that pause (SIGSTOP) or otherwise disturb it without
// touching the server the other suites share: its streams created and a broker connected.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startNats, type ServerHandle } from '../../scripts/localServices.ts';
import { connectBroker, ensureStreams, type Broker } from '../../streams/connection.ts';
import { scratchDir } from '../../scripts/scratchDir.ts';

/** The server, a broker on it, and how to stop both and remove the server's store. */
export interface OwnNats {
  nats: ServerHandle;
  broker: Broker;
  stop(): Promise<void>;
}

/** Starts a nats-server with JetStream in a fresh temporary directory, with the platform's streams. */
async function startOwnNats(name: string): Promise<OwnNats> {
  const dir = await scratchDir(`${name}`);
  const nats = await startNats({ storeDir: join(dir, 'nats') });
  const broker = await connectBroker(nats.url, `${name}-test`);
  await ensureStreams(broker.nc);
  return {
    nats,
    broker,
    stop: async () => {
      await broker.close();
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The test file's (or describe block's) own nats-server: started before its tests, stopped after them.
 * The object is filled in by the beforeAll hook this registers, so read it inside hooks and tests.
 */
export function useOwnNats(name: string): OwnNats {
  const own = {} as OwnNats;
  beforeAll(async () => void Object.assign(own, await startOwnNats(name)));
  afterAll(() => own.stop?.());
  return own;
}
