import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../lib/devKeys.ts';
import { answers200, freePort, pollUntil } from '../scripts/network.ts';

let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), 'pulsegraph-standalone-'))));
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('the gateway alone over a supergraph (npm run gateway)', () => {
  it('answers without NATS, Redis or Postgres, and loads none of their client libraries', async () => {
    const port = await freePort();
    const recorded = join(dir, 'packages.txt');
    const child = spawn(
      process.execPath,
      [
        '--import',
        './test/support/packageRecorder.ts',
        'gateway/server.ts',
        '--supergraph',
        'supergraph.graphql',
        '--port',
        String(port),
      ],
      {
        env: {
          ...process.env,
          PACKAGES_LOADED_FILE: recorded,
          NODE_ENV: 'test',
          LOG_LEVEL: 'warn',
          AUTH_MODE: 'dev',
          DATA_DIR: dir,
          HOST: '127.0.0.1',
          NATS_URL: '',
          REDIS_URL: '',
          DATABASE_URL: '',
          SUPERGRAPH_POLL_MS: '0',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    let running = true;
    const exited = once(child, 'exit').finally(() => (running = false));
    try {
      const base = `http://127.0.0.1:${port}`;
      const up = await pollUntil(() => answers200(`${base}/healthz`), {
        timeoutMs: 20_000,
        stop: () => !running,
      });
      expect(up).toBe(true);
      const token = await signDevToken(dir, { tenant: 'acme', roles: ['viewer'] });
      const answer = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: '{"query":"{ __typename }"}',
      });
      expect(await answer.json()).toEqual({ data: { __typename: 'Query' } });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const packages = (await readFile(recorded, 'utf8')).split('\n');
    // What the gateway runs on is recorded (the recorder works)...
    expect(packages).toEqual(expect.arrayContaining(['graphql', '@apollo/query-planner', 'undici']));
    // ...and the clients of the services it was not given are not (gateway/server.ts loads them on demand).
    expect(packages.filter((name) => /^(ioredis|@ioredis\/.*|pg|pg-.*|@nats-io\/.*)$/.test(name))).toEqual(
      [],
    );
  });
});
