// The quick start: `node scripts/start.ts` brings the platform up, and Ctrl-C takes all of it down.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isRunning } from '../scripts/childProcesses.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../lib/devKeys.ts';
import { freePort, isPortFree, pollUntil } from '../scripts/network.ts';
import { createTestDatabase, services, type TestDatabase } from './support/services.ts';
import { gatewayMetric } from './support/subscribers.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
// Free ports, not the defaults: the gateway must route to the subgraphs where start.ts put them.
const ports: Record<string, number> = {};
const SERVICES = ['GATEWAY', 'METADATA', 'METRICS', 'REPORTS', 'INSIGHTS'];

describe('npm start', () => {
  let database: TestDatabase;
  let dataDir: string;
  let start: ChildProcess | undefined;
  let output = '';
  const servicePids = () => [...output.matchAll(/started ([\w-]+) \(pid (\d+)\)/g)].map((m) => Number(m[2]));

  beforeAll(async () => {
    for (const name of SERVICES) ports[`${name}_PORT`] = await freePort();
    database = await createTestDatabase();
    dataDir = await scratchDir('start');
  });

  afterAll(async () => {
    // Only reached with something running when an assertion failed midway: leave nothing behind.
    if (start && start.exitCode === null && start.signalCode === null) start.kill('SIGKILL');
    for (const pid of servicePids()) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(
    'comes up, answers /readyz, and on SIGINT stops every process it started',
    { timeout: 150_000 },
    async () => {
      const { natsUrl, redisUrl } = services();
      const child = spawn(process.execPath, ['scripts/start.ts'], {
        cwd: root,
        env: {
          ...process.env,
          NODE_ENV: 'development',
          SUBGRAPH_BATCHING: undefined, // start.ts's default, checked below
          DATABASE_URL: database.appUrl,
          DATABASE_ADMIN_URL: database.adminUrl,
          NATS_URL: natsUrl,
          REDIS_URL: redisUrl,
          DATA_DIR: dataDir,
          LOG_LEVEL: 'info',
          WORKER_METRICS_PORT: '0', // each worker on a free port, named in its "ready" line
          ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      start = child;
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

      const up = await pollUntil(
        () =>
          Promise.resolve(
            output.includes(`Pulsegraph is up: http://127.0.0.1:${ports['GATEWAY_PORT']}/graphql`),
          ),
        {
          timeoutMs: 60_000,
          intervalMs: 200,
          stop: () => child.exitCode !== null,
        },
      );
      expect(up, `no "Pulsegraph is up" line within 60 s; output:\n${output.slice(-4000)}`).toBe(true);
      expect((await fetch(`http://127.0.0.1:${ports['GATEWAY_PORT']}/readyz`)).status).toBe(200);
      const pids = servicePids();
      // Four subgraphs, the gateway, the event writer, the KPI calculator, the report scheduler and
      // worker, and the insight detector.
      expect([...output.matchAll(/started ([\w-]+) \(pid/g)].map((m) => m[1]).sort()).toEqual([
        'calculator',
        'detector',
        'gateway',
        'insights',
        'metadata',
        'metrics',
        'report-worker',
        'reports',
        'scheduler',
        'writer',
      ]);
      expect(pids).toHaveLength(10);
      // Each worker serves /healthz beside its /metrics, on the port its "ready" line names.
      // Workers are not waited for by start.ts: their lines may come after "Pulsegraph is up".
      const workerLines = () => [...output.matchAll(/^([\w-]+)\s+\|\s+metrics: "(http:[^"]+)\/metrics"/gm)];
      await pollUntil(() => Promise.resolve(workerLines().length >= 5), {
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      const workerMetrics = workerLines();
      expect(workerMetrics.map((m) => m[1]).sort()).toEqual([
        'calculator',
        'detector',
        'report-worker',
        'scheduler',
        'writer',
      ]);
      for (const [, name, base] of workerMetrics)
        expect((await fetch(`${base}/healthz`)).status, `${name} /healthz`).toBe(200);

      // The gateway batches a plan wave's fetches to one subgraph (start.ts sets SUBGRAPH_BATCHING=*).
      const gateway = `http://127.0.0.1:${ports['GATEWAY_PORT']}`;
      const token = await signDevToken(dataDir, { tenant: 'acme', roles: ['admin'] });
      const ask = async (query: string) => {
        const response = await fetch(`${gateway}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query }),
        });
        return (await response.json()) as { data?: unknown; errors?: unknown };
      };
      const defined = await ask(
        'mutation { defineKpi(input: { code: "orders", name: "Orders", eventName: "order.placed", aggregation: COUNT }) { code } }',
      );
      expect(defined.errors).toBeUndefined();
      const both = await ask(
        '{ a: kpis { code current { value } } b: kpis { name current { dimensions } } }',
      );
      expect(both).toEqual({
        data: {
          a: [{ code: 'orders', current: { value: 0 } }],
          b: [{ name: 'Orders', current: { dimensions: null } }],
        },
      });
      expect(
        await gatewayMetric(
          `${gateway}/graphql`,
          'pulsegraph_subgraph_fetches_batched_total{subgraph="metrics"}',
        ),
      ).toBe(2);

      child.kill('SIGINT');
      expect(await exited, `start did not exit cleanly; output:\n${output.slice(-4000)}`).toBe(0);
      expect(pids.filter(isRunning)).toEqual([]);
      for (const port of Object.values(ports))
        expect(await isPortFree(port), `port ${port} still taken`).toBe(true);
    },
  );
});
