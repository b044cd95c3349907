import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOnPath, isRunning } from './childProcesses.ts';
import { requireBinary, startNats, startRedis, type ServerHandle } from './localServices.ts';
import { isPortFree, pollUntil, readFirstLine } from './network.ts';
import { scratchDir } from './scratchDir.ts';

describe('local services', () => {
  let dir: string;
  const started: ServerHandle[] = [];

  beforeAll(async () => {
    dir = await scratchDir('local');
  });

  afterAll(async () => {
    for (const server of started) await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts nats-server with JetStream and restarts it on the same port and store after a SIGKILL', async () => {
    const nats = await startNats({ storeDir: join(dir, 'nats') });
    started.push(nats);
    expect(nats.url).toBe(`nats://127.0.0.1:${nats.port}`);
    expect(await readFirstLine(nats.port)).toContain('"jetstream":true');

    const crashed = nats.pid!;
    await nats.kill('SIGKILL');
    expect(isRunning(crashed)).toBe(false);
    expect(await readFirstLine(nats.port)).toBeUndefined();

    await nats.restart();
    expect(nats.pid).not.toBe(crashed);
    expect(await readFirstLine(nats.port)).toContain('"jetstream":true');

    const restarted = nats.pid!;
    await nats.stop();
    expect(isRunning(restarted)).toBe(false);
    expect(await isPortFree(nats.port)).toBe(true);
  });

  it('starts redis-server that answers PING and is gone after stop', async () => {
    const redis = await startRedis({ dir: join(dir, 'redis') });
    started.push(redis);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await readFirstLine(redis.port, 'PING\r\n')).toBe('+PONG');

    const pid = redis.pid!;
    await redis.stop();
    expect(isRunning(pid)).toBe(false);
    expect(await isPortFree(redis.port)).toBe(true);
  });

  it.runIf(process.platform === 'linux' && findOnPath('setpriv'))(
    'does not leave a server running when its parent is killed',
    async () => {
      const module = new URL('./localServices.ts', import.meta.url).href;
      const script = `import { startRedis } from ${JSON.stringify(module)};
        const redis = await startRedis({ dir: ${JSON.stringify(join(dir, 'orphan'))} });
        console.log(redis.pid);
        setInterval(() => {}, 1000);`;
      const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const pid = await new Promise<number>((resolve) =>
        parent.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk))),
      );
      expect(isRunning(pid)).toBe(true);
      parent.kill('SIGKILL');
      expect(await pollUntil(() => Promise.resolve(!isRunning(pid)), { timeoutMs: 5000 })).toBe(true);
    },
  );

  it('explains in one line how to get a missing binary', () => {
    expect(() => requireBinary('definitely-not-a-binary')).toThrow(
      /^definitely-not-a-binary not found on PATH: [^\n]*$/,
    );
    expect(() => withPath('', () => requireBinary('nats-server'))).toThrow(
      'nats-server not found on PATH: install it with "apt-get install nats-server redis-server", set NATS_URL to an existing server, or use docker-compose',
    );
  });
});

function withPath<T>(path: string, run: () => T): T {
  const saved = process.env['PATH'];
  process.env['PATH'] = path;
  try {
    return run();
  } finally {
    process.env['PATH'] = saved;
  }
}
