// A platform for fault tests, on services of its own so that killing them leaves other test files alone:
// a dedicated Postgres cluster, redis-server and nats-server; subgraphs and gateway in-process; the
// workers as OS processes (as npm start runs them) that a test can SIGKILL and start again.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { isRunning } from '../../scripts/childProcesses.ts';
import { startLocalPlatform } from '../../scripts/localPlatform.ts';
import {
  startPostgres,
  startRedis,
  type PostgresHandle,
  type ServerHandle,
} from '../../scripts/localServices.ts';
import type { DurableConsumer } from '../../streams/consumers.ts';
import { waitForConsumerDrained } from '../support/consumers.ts';
import { startServiceProcess, type ServiceProcess } from '../support/processes.ts';
import type { TestPlatform } from '../support/platform.ts';
import { scratchDir } from '../../scripts/scratchDir.ts';

const APP_PASSWORD = 'pulsegraph-fault-app';
const INGEST = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted duplicates rejected { index } } }`;

/** The workers a fault test runs as processes, by name, with their entry scripts. */
export const workerScripts = {
  writer: 'subgraphs/metrics/writer.ts',
  calculator: 'subgraphs/metrics/calculator.ts',
  detector: 'subgraphs/insights/detector.ts',
  reportWorker: 'subgraphs/reports/worker.ts',
} as const;

/** A worker's name. */
export type WorkerName = keyof typeof workerScripts;

/** The fault platform and the handles a test breaks it with. */
export interface FaultPlatform {
  platform: TestPlatform;
  postgres: PostgresHandle;
  redis: ServerHandle;
  /** Superuser pool on the platform's database, for counting rows. */
  admin: pg.Pool;
  workers: Map<WorkerName, ServiceProcess>;
  /** Every pid this platform started, to prove none is left after stop(). */
  pids: Set<number>;
  /** Starts (or starts again) a worker process. */
  startWorker(name: WorkerName): ServiceProcess;
  /** SIGKILLs a worker and waits for its exit. */
  killWorker(name: WorkerName): Promise<void>;
  /** Stops Postgres (fast shutdown) and starts it again on the same port and data after `downMs`. */
  bouncePostgres(downMs: number, whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the fault platform; `workers` are started as processes. */
export async function startFaultPlatform(
  workers: WorkerName[],
  env: Record<string, string> = {},
): Promise<FaultPlatform> {
  const root = await scratchDir('faults');
  let postgres = await startPostgres({ dataDir: join(root, 'pg'), persistent: true });
  const redis = await startRedis({ dir: join(root, 'redis') });
  const platform = await startLocalPlatform({
    clusterAdminUrl: postgres.adminUrl,
    appPassword: APP_PASSWORD,
    redisUrl: redis.url,
    env,
  });
  const admin = new pg.Pool({ connectionString: platform.adminUrl, max: 2 });
  admin.on('error', () => undefined);
  const pids = new Set<number>([postgres.pid, redis.pid, platform.nats.pid].filter((p) => p !== undefined));
  const running = new Map<WorkerName, ServiceProcess>();
  const startWorker = (name: WorkerName) => {
    const service = startServiceProcess(platform, workerScripts[name], { LOG_LEVEL: 'fatal', ...env });
    if (service.child.pid) pids.add(service.child.pid);
    running.set(name, service);
    return service;
  };
  for (const name of workers) startWorker(name);
  return {
    platform,
    get postgres() {
      return postgres;
    },
    redis,
    admin,
    workers: running,
    pids,
    startWorker,
    async killWorker(name) {
      await running.get(name)?.kill();
      running.delete(name);
    },
    async bouncePostgres(downMs, whileDown) {
      const port = postgres.port;
      await postgres.stop();
      const until = Date.now() + downMs;
      await whileDown?.();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, until - Date.now())));
      postgres = await startPostgres({ dataDir: join(root, 'pg'), port, persistent: true });
      if (postgres.pid) pids.add(postgres.pid);
    },
    async stop() {
      for (const service of running.values()) await service.kill();
      await admin.end();
      await platform.stop();
      await redis.stop();
      await postgres.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Pids of `pids` that still run. */
export function leakedPids(pids: Iterable<number>): number[] {
  return [...pids].filter((pid) => isRunning(pid));
}

/** A producer of unique events that resends a batch until the platform answers it (as a client after a timeout would). */
export class Producer {
  readonly #platform: TestPlatform;
  readonly #tenant: string;
  #next = 0;
  /** Ids of every event an answer counted as accepted or duplicate. */
  readonly acknowledged = new Set<string>();
  /** The sum of `points` over the acknowledged events. */
  pointsTotal = 0;
  /** Sends that failed and were retried. */
  retries = 0;

  constructor(platform: TestPlatform, tenant: string) {
    this.#platform = platform;
    this.#tenant = tenant;
  }

  /** The events `name` with `points` attributes, numbered on from the last batch. */
  batch(size: number, name = 'hit'): Array<Record<string, unknown>> {
    return Array.from({ length: size }, () => {
      const n = this.#next++;
      return {
        id: `${name}-${n}`,
        type: 'USER_ACTION',
        name,
        source: 'fault-test',
        timestamp: new Date().toISOString(),
        attributes: { points: n % 7 },
      };
    });
  }

  /** Sends the batch until an answer comes (retrying every 200 ms for up to `timeoutMs`); returns it. */
  async send(
    events: Array<Record<string, unknown>>,
    timeoutMs = 60_000,
  ): Promise<{ accepted: number; duplicates: number }> {
    const token = await this.#platform.token(this.#tenant, ['ingest']);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = await this.#platform
        .graphql(INGEST, { token, variables: { events } })
        .then(({ body }) => (body.errors ? undefined : body.data))
        .catch(() => undefined);
      const result = (answer as { ingestEvents?: { accepted: number; duplicates: number } } | undefined)
        ?.ingestEvents;
      if (result) {
        for (const event of events) {
          const id = event['id'] as string;
          if (this.acknowledged.has(id)) continue;
          this.acknowledged.add(id);
          this.pointsTotal += (event['attributes'] as { points: number }).points;
        }
        return result;
      }
      if (Date.now() > deadline) throw new Error(`a batch of ${events.length} was not answered in time`);
      this.retries += 1;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/**
 * Waits until the writer process stores events (one probe event of a tenant of its own): a fault must
 * strike a pipeline that runs, not one whose processes are still starting on a busy machine.
 */
export async function untilWriterStores(fault: FaultPlatform, timeoutMs = 90_000): Promise<void> {
  const probe = new Producer(fault.platform, 'probe');
  await probe.send(probe.batch(1, 'probe'));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await fault.admin
      .query<{ n: string }>("SELECT count(*) AS n FROM events WHERE tenant_id = 'probe'")
      .catch(() => ({ rows: [{ n: '0' }] }));
    if (Number(rows[0]!.n) > 0) return;
    if (Date.now() > deadline) throw new Error(`the writer stored nothing in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Asserts every acknowledged event is stored exactly once for the tenant (polling until the writer caught up). */
export async function expectStoredExactlyOnce(
  fault: FaultPlatform,
  tenant: string,
  expected: number,
  timeoutMs = 60_000,
): Promise<void> {
  const counts = async () => {
    const { rows } = await fault.admin.query<{ n: string; distinct_ids: string }>(
      'SELECT count(*) AS n, count(DISTINCT event_id) AS distinct_ids FROM events WHERE tenant_id = $1',
      [tenant],
    );
    return { rows: Number(rows[0]!.n), distinctIds: Number(rows[0]!.distinct_ids) };
  };
  await expect
    .poll(() => counts().catch(() => undefined), { timeout: timeoutMs, interval: 250 })
    .toEqual({ rows: expected, distinctIds: expected });
}

/** Polls until the durable consumer has nothing pending and nothing unacknowledged. */
export const expectConsumerDrained = (fault: FaultPlatform, consumer: DurableConsumer, timeoutMs = 60_000) =>
  waitForConsumerDrained(fault.platform.nats.url, consumer.stream, consumer.config.durable_name, {
    timeoutMs,
    intervalMs: 250,
  });

/** Defines KPIs for the tenant through the gateway. */
export async function defineKpis(
  platform: TestPlatform,
  tenant: string,
  inputs: Array<Record<string, unknown>>,
): Promise<void> {
  const token = await platform.token(tenant, ['admin']);
  const define = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`;
  for (const input of inputs) {
    const { body } = await platform.graphql(define, { token, variables: { input } });
    expect(body.errors).toBeUndefined();
  }
}

/** The current value of a KPI through the gateway (undefined while it cannot be read). */
export async function kpiValue(platform: TestPlatform, tenant: string, code: string): Promise<unknown> {
  const token = await platform.token(tenant, ['viewer']);
  const { body } = await platform
    .graphql(`query ($code: ID!) { kpi(code: $code) { current { value } } }`, {
      token,
      variables: { code },
    })
    .catch(() => ({ body: undefined }));
  return (body?.data as { kpi?: { current?: { value: unknown } } } | undefined)?.kpi?.current?.value;
}

/** Creates an ad-hoc CSV report of `metrics` over the last hour and queues its generation; returns its id. */
export async function generateReport(
  platform: TestPlatform,
  tenant: string,
  metrics: string[],
): Promise<string> {
  const token = await platform.token(tenant, ['admin']);
  const created = await platform.graphql(
    `mutation ($input: CreateReportInput!) { createReport(input: $input) { id } }`,
    {
      token,
      variables: {
        input: {
          name: `fault report ${Date.now()}`,
          type: 'ADHOC',
          format: 'CSV',
          config: {
            metrics,
            dimensions: [],
            timeRange: {
              start: new Date(Date.now() - 3_600_000).toISOString(),
              end: new Date(Date.now() + 60_000).toISOString(),
              interval: '1h',
            },
          },
        },
      },
    },
  );
  expect(created.body.errors).toBeUndefined();
  const id = (created.body.data as { createReport: { id: string } }).createReport.id;
  return id;
}

/** Queues a generation of the report; resolves with its status (QUEUED). */
export async function queueGeneration(platform: TestPlatform, tenant: string, id: string): Promise<string> {
  const token = await platform.token(tenant, ['admin']);
  const { body } = await platform.graphql(`mutation ($id: ID!) { generateReport(id: $id) { status } }`, {
    token,
    variables: { id },
  });
  expect(body.errors).toBeUndefined();
  return (body.data as { generateReport: { status: string } }).generateReport.status;
}

/** The report's status through the gateway. */
export async function reportStatus(
  platform: TestPlatform,
  tenant: string,
  id: string,
): Promise<string | undefined> {
  const token = await platform.token(tenant, ['viewer']);
  const { body } = await platform.graphql(`query ($id: ID!) { report(id: $id) { status } }`, {
    token,
    variables: { id },
  });
  return (body.data as { report?: { status: string } } | null)?.report?.status;
}
