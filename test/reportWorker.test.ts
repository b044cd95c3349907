// Report generation end to end: jobs queued on REPORTS, the worker as its own OS process writing
// files from rollups, progress in Postgres and Redis, and the download endpoint of the gateway.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../db/pool.ts';
import {
  createRedisPubSub,
  reportProgressChannel,
  type RedisPubSub,
  type ReportProgress,
} from '../lib/redis.ts';
import { connectBroker, type Broker } from '../streams/connection.ts';
import { enqueueGeneration } from '../subgraphs/reports/queue.ts';
import {
  generationStore,
  reportStore,
  type GenerationRow,
  type NewReport,
} from '../subgraphs/reports/store.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const NOW = Date.now();
const HOUR = 3_600_000;
const MINUTE = 60_000;
const COUNTRIES = ['DE', 'FR', 'NL'];
// Known orders of the last 100 minutes: amounts in cents so that every sum is exact.
const ORDERS = Array.from({ length: 600 }, (_, i) => ({
  id: `order-${i}`,
  type: 'BUSINESS_EVENT',
  name: 'order.placed',
  source: 'web',
  timestamp: new Date(NOW - 5_000 - i * 10_000).toISOString(),
  attributes: { amount: ((i * 3_737) % 100_000) / 100, country: COUNTRIES[i % 3] },
}));
const cents = (amount: number) => Math.round(amount * 100);

// Rollups written directly for the large reports: ticks per minute in four regions, from a whole day.
const BIG_MINUTES = 250_000;
const BIG_START = Math.floor((NOW - 400 * 86_400_000) / 86_400_000) * 86_400_000;
const REGIONS = ['north', 'south', 'east', 'west'];

let platform: TestPlatform;
let admin: pg.Pool;
let pool: pg.Pool;
let broker: Broker;
let redis: RedisPubSub;
const workers = new Set<ChildProcess>();

/** The report worker as its own OS process, as npm start and docker-compose run it. */
function startWorker(env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['subgraphs/reports/worker.ts'], {
    env: {
      ...process.env,
      ...env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      AUTH_MODE: 'dev',
      DATA_DIR: platform.dataDir,
      DATABASE_URL: platform.config.DATABASE_URL,
      NATS_URL: platform.nats.url,
      REDIS_URL: platform.config.REDIS_URL,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  workers.add(child);
  child.once('exit', () => workers.delete(child));
  return child;
}

function stopWorker(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill(signal);
  });
}

async function until<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const createReport = (tenant: string, report: NewReport) =>
  withTenant(pool, tenant, (client) => reportStore.create(client, report));

const generationOf = (tenant: string, id: string) =>
  withTenant(pool, tenant, (client) => generationStore.get(client, id));

const finished = (tenant: string, id: string, timeoutMs: number) =>
  until(
    async () => {
      const generation = await generationOf(tenant, id);
      return (
        generation && (generation.status === 'COMPLETED' || generation.status === 'FAILED') && generation
      );
    },
    timeoutMs,
    `generation ${id} finished`,
  );

async function enqueue(tenant: string, reportId: string): Promise<GenerationRow> {
  return (await enqueueGeneration({ pool, broker, redis }, tenant, reportId))!;
}

/** Records the progress events of a report, as a reportProgress subscriber would see them. */
async function recordProgress(tenant: string, reportId: string): Promise<ReportProgress[]> {
  const events: ReportProgress[] = [];
  await redis.subscribe(reportProgressChannel(tenant, reportId), (event: ReportProgress) =>
    events.push(event),
  );
  return events;
}

function download(generationId: string, token?: string): Promise<Response> {
  return fetch(new URL(`/reports/${generationId}/download`, platform.gatewayUrl), {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
}

/** The records of a CSV whose fields need no quoting (the unit tests cover quoting). */
const csvRecords = (text: string) =>
  text
    .split('\r\n')
    .filter(Boolean)
    .map((line) => line.split(','));

const report = (config: Partial<NewReport['config']>, extra: Partial<NewReport> = {}): NewReport => ({
  name: 'Sales by country',
  type: 'ADHOC',
  schedule: null,
  format: 'CSV',
  config: {
    metrics: ['orders', 'revenue'],
    dimensions: ['country'],
    filters: [],
    timeRange: {
      start: new Date(Math.floor((NOW - 3 * HOUR) / HOUR) * HOUR).toISOString(),
      end: new Date(NOW + HOUR).toISOString(),
      interval: '1h',
    },
    ...config,
  },
  ...extra,
});

/** A report of the rollups of tenant "big": its first `minutes` minutes by region, 4 rows a minute. */
const ticksReport = (minutes: number) =>
  report({
    metrics: ['ticks'],
    dimensions: ['region'],
    timeRange: {
      start: new Date(BIG_START).toISOString(),
      end: new Date(BIG_START + minutes * MINUTE).toISOString(),
      interval: '1m',
    },
  });

/** Waits for a generation to be RUNNING with some progress recorded. */
const underWay = (tenant: string, id: string) =>
  until(
    async () => {
      const generation = await generationOf(tenant, id);
      return generation?.status === 'RUNNING' && generation.progress > 0 && generation;
    },
    30_000,
    `generation ${id} under way`,
  );

beforeAll(async () => {
  platform = await startTestPlatform({ workers: true });
  admin = new pg.Pool({ connectionString: platform.adminUrl, max: 2 });
  pool = new pg.Pool({ connectionString: platform.config.DATABASE_URL, max: 4 });
  broker = await connectBroker(platform.nats.url, 'report-test');
  redis = createRedisPubSub(platform.config.REDIS_URL!);

  const token = await platform.token('shop', ['admin']);
  const define = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`;
  for (const input of [
    {
      code: 'orders',
      name: 'Orders',
      eventName: 'order.placed',
      aggregation: 'COUNT',
      dimensions: ['country'],
    },
    {
      code: 'revenue',
      name: 'Revenue',
      eventName: 'order.placed',
      aggregation: 'SUM',
      valueField: 'amount',
      dimensions: ['country'],
    },
  ]) {
    expect((await platform.graphql(define, { token, variables: { input } })).body.errors).toBeUndefined();
  }
  const ingest = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted } }`;
  const { body } = await platform.graphql(ingest, { token, variables: { events: ORDERS } });
  expect(body.data).toEqual({ ingestEvents: { accepted: ORDERS.length } });
  await until(
    async () => {
      const { rows } = await admin.query<{ n: string | null }>(
        `SELECT sum(count) AS n FROM rollups WHERE tenant_id = 'shop' AND kpi_code = 'revenue' AND resolution = '1h'`,
      );
      return Number(rows[0]!.n) === ORDERS.length;
    },
    60_000,
    'orders rolled up',
  );

  // A KPI of tenant "big" with 1,000,000 rollup rows, written as the writer would have (no backfill runs:
  // the definition is inserted directly, not through defineKpi).
  await admin.query(
    `INSERT INTO kpis (tenant_id, code, name, event_name, aggregation, dimensions)
     VALUES ('big', 'ticks', 'Ticks', 'tick', 'COUNT', '{region}')`,
  );
  await admin.query(
    `INSERT INTO rollups (tenant_id, kpi_code, resolution, bucket, dims, count, sum)
     SELECT 'big', 'ticks', '1m', to_timestamp($1::double precision / 1000) + make_interval(mins => m),
            jsonb_build_object('region', r), 1 + (m % 5), 0
       FROM generate_series(0, $2 - 1) AS m, unnest($3::text[]) AS r`,
    [BIG_START, BIG_MINUTES, REGIONS],
  );
}, 180_000);

afterAll(async () => {
  for (const child of workers) child.kill('SIGKILL');
  await redis?.close();
  await broker?.close();
  await pool?.end();
  await admin?.end();
  await platform?.stop();
});

describe('a report generated by the worker', () => {
  let worker: ChildProcess;
  let viewer: string;
  beforeAll(async () => {
    worker = startWorker();
    viewer = await platform.token('shop', ['viewer']);
  });
  afterAll(async () => {
    expect(await stopWorker(worker)).toBe(0);
  });

  it('is a CSV whose values add up exactly to the events ingested, downloadable by the tenant', async () => {
    const definition = await createReport('shop', report({}, { name: 'Sales / by "country" (weekly)' }));
    const events = await recordProgress('shop', definition.id);
    const queued = await enqueue('shop', definition.id);
    expect(queued.status).toBe('QUEUED');
    const generation = await finished('shop', queued.id, 30_000);
    expect(generation).toMatchObject({ status: 'COMPLETED', progress: 1, attempts: 1, error: null });

    const response = await download(generation.id, viewer);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const date = generation.finishedAt!.toISOString().slice(0, 10);
    const disposition = response.headers.get('content-disposition')!;
    expect(disposition).toMatch(
      new RegExp(`^attachment; filename="Sales-by-country-weekly-${date}\\.csv"; `),
    );
    expect(decodeURIComponent(/filename\*=UTF-8''(\S+)$/.exec(disposition)![1]!)).toBe(
      `Sales by "country" (weekly)-${date}.csv`,
    );
    const text = await response.text();
    expect(Number(response.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    expect(Buffer.byteLength(text)).toBe(generation.byteCount);

    const [header, ...rows] = csvRecords(text);
    expect(header).toEqual(['kpi', 'bucket', 'country', 'value']);
    expect(rows).toHaveLength(generation.rowCount!);
    for (const country of COUNTRIES) {
      const mine = ORDERS.filter((o) => o.attributes.country === country);
      const of = (kpi: string) =>
        rows.filter((r) => r[0] === kpi && r[2] === country).map((r) => Number(r[3]));
      expect(
        of('orders').reduce((a, b) => a + b, 0),
        `orders ${country}`,
      ).toBe(mine.length);
      expect(
        of('revenue').reduce((a, b) => a + cents(b), 0),
        `revenue ${country}`,
      ).toBe(mine.reduce((a, o) => a + cents(o.attributes.amount), 0));
    }
    // Ordered KPI -> bucket -> dimension values.
    const keys = rows.map((r) => `${r[0] === 'orders' ? 0 : 1}|${r[1]}|${r[2]}`);
    expect(keys).toEqual([...keys].sort());
    await until(() => events.some((e) => e.status === 'COMPLETED'), 5_000, 'COMPLETED announced');
    const statuses = events.map((e) => e.status).filter((status, i, all) => status !== all[i - 1]);
    expect(statuses).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progress: 1, generationId: generation.id });
  });

  it('is a JSON array when asked for, with the filter applied', async () => {
    const definition = await createReport(
      'shop',
      report({ filters: [{ field: 'country', operator: 'eq', value: 'DE' }] }, { format: 'JSON' }),
    );
    const generation = await finished('shop', (await enqueue('shop', definition.id)).id, 30_000);
    expect(generation.status).toBe('COMPLETED');
    const response = await download(generation.id, viewer);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    const rows = (await response.json()) as Array<{
      kpi: string;
      bucket: string;
      dimensions: object;
      value: number;
    }>;
    expect(rows).toHaveLength(generation.rowCount!);
    expect(new Set(rows.map((r) => JSON.stringify(r.dimensions)))).toEqual(new Set(['{"country":"DE"}']));
    const german = ORDERS.filter((o) => o.attributes.country === 'DE');
    const total = (kpi: string, value: (v: number) => number) =>
      rows.filter((r) => r.kpi === kpi).reduce((a, r) => a + value(r.value), 0);
    expect(total('orders', (v) => v)).toBe(german.length);
    expect(total('revenue', cents)).toBe(german.reduce((a, o) => a + cents(o.attributes.amount), 0));
  });

  it('is FAILED with a readable reason when its KPI is gone, and the worker goes on', async () => {
    const definition = await createReport('shop', report({ metrics: ['orders', 'refunds'] }));
    const events = await recordProgress('shop', definition.id);
    const generation = await finished('shop', (await enqueue('shop', definition.id)).id, 30_000);
    expect(generation).toMatchObject({
      status: 'FAILED',
      attempts: 1,
      error: 'KPI "refunds" does not exist (any more)',
    });
    await until(() => events.some((e) => e.status === 'FAILED'), 5_000, 'FAILED announced');
    expect((await download(generation.id, viewer)).status).toBe(409);

    const next = await createReport('shop', report({ metrics: ['orders'] }));
    expect((await finished('shop', (await enqueue('shop', next.id)).id, 30_000)).status).toBe('COMPLETED');
  });

  it('is refused without a token (401), to other roles (403) and other tenants (404), and before COMPLETED (409)', async () => {
    const definition = await createReport('shop', report({ metrics: ['orders'] }));
    const done = await finished('shop', (await enqueue('shop', definition.id)).id, 30_000);
    const queued = (await withTenant(pool, 'shop', (client) =>
      generationStore.create(client, { reportId: definition.id, format: 'CSV', trigger: 'manual' }),
    ))!;
    const cases: Array<[string, string | undefined, number, string]> = [
      [done.id, undefined, 401, 'UNAUTHENTICATED'],
      [done.id, 'not-a-jwt', 401, 'UNAUTHENTICATED'],
      [done.id, await platform.token('shop', ['ingest']), 403, 'FORBIDDEN'],
      [done.id, await platform.token('other', ['admin']), 404, 'NOT_FOUND'],
      ['not-a-uuid', viewer, 404, 'NOT_FOUND'],
      [queued.id, viewer, 409, 'CONFLICT'],
    ];
    for (const [id, token, status, code] of cases) {
      const response = await download(id, token);
      const body = (await response.json()) as {
        errors: Array<{ message: string; extensions: { code: string } }>;
      };
      expect([response.status, body.errors[0]!.extensions.code], `${code} ${id}`).toEqual([status, code]);
      expect(body.errors[0]!.message).toBeTruthy();
    }
    expect((await download(done.id, viewer)).status).toBe(200);
  });
});

describe('a worker killed in the middle of a report', () => {
  it('leaves the job to be redelivered, and it completes exactly once', async () => {
    const definition = await createReport('big', ticksReport(100_000));
    const events = await recordProgress('big', definition.id);
    let worker = startWorker();
    const queued = await enqueue('big', definition.id);
    const running = await underWay('big', queued.id);
    expect(running.message).toMatch(/^kpi ticks: [\d,]+ of [\d,]+ rows$/);
    await stopWorker(worker, 'SIGKILL');
    expect((await generationOf('big', queued.id))!.status).toBe('RUNNING');

    // Redelivered once ack_wait (30 s) has passed since the last sign of life of the killed worker.
    worker = startWorker();
    const generation = await finished('big', queued.id, 90_000);
    expect(generation).toMatchObject({ status: 'COMPLETED', attempts: 2, rowCount: 400_000 });
    const text = await readFile(join(platform.dataDir, 'reports', generation.filePath!), 'utf8');
    const records = csvRecords(text);
    expect(records).toHaveLength(400_000 + 1);
    expect(new Set(records.slice(1).map((r) => `${r[1]}|${r[2]}`)).size).toBe(400_000);
    const { rows } = await admin.query<{ status: string; n: string }>(
      `SELECT status, count(*) AS n FROM report_generations WHERE tenant_id = 'big' AND report_id = $1 GROUP BY status`,
      [definition.id],
    );
    expect(rows.map((r) => [r.status, Number(r.n)])).toEqual([['COMPLETED', 1]]);
    expect(events.filter((e) => e.status === 'COMPLETED')).toHaveLength(1);
    expect(await stopWorker(worker)).toBe(0);
  }, 150_000);
});

describe('a worker stopped (SIGTERM) in the middle of a report', () => {
  it('returns the job to the queue at once, and another worker completes it', async () => {
    // The 1,000,000-row report (6 to 7 s here): a 400,000-row one could finish within the grace below.
    const definition = await createReport('big', ticksReport(BIG_MINUTES));
    // Half of SHUTDOWN_TIMEOUT_MS to finish the job: far less than this report needs.
    const stopping = startWorker({ SHUTDOWN_TIMEOUT_MS: '4000' });
    const queued = await enqueue('big', definition.id);
    await underWay('big', queued.id);
    const other = startWorker();
    // Exit code 0: it stopped within SHUTDOWN_TIMEOUT_MS (1 when the bound is hit).
    expect(await stopWorker(stopping)).toBe(0);
    // Well before ack_wait (30 s) would have brought it back.
    const generation = await finished('big', queued.id, 25_000);
    expect(generation).toMatchObject({ status: 'COMPLETED', attempts: 2, rowCount: 1_000_000 });
    const left = await readdir(join(platform.dataDir, 'reports', 'big'));
    expect(left.filter((name) => name.startsWith(queued.id))).toEqual([`${queued.id}.csv`]);
    expect(await stopWorker(other)).toBe(0);
  }, 60_000);
});

describe('a 1,000,000-row report', () => {
  it('is written with flat memory by the worker process', async () => {
    const definition = await createReport('big', ticksReport(BIG_MINUTES));
    const worker = startWorker();
    const started = Date.now();
    const generation = await finished('big', (await enqueue('big', definition.id)).id, 100_000);
    const seconds = (Date.now() - started) / 1000;
    const status = await readFile(`/proc/${worker.pid}/status`, 'utf8');
    const peakMb = Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)![1]) / 1024;
    console.log(`report worker: 1,000,000 rows in ${seconds.toFixed(1)} s, peak RSS ${peakMb.toFixed(0)} MB`);
    expect(generation).toMatchObject({ status: 'COMPLETED', rowCount: 1_000_000, attempts: 1 });
    expect(peakMb).toBeLessThan(400);
    const expectedTicks =
      REGIONS.length * Array.from({ length: BIG_MINUTES }, (_, m) => 1 + (m % 5)).reduce((a, b) => a + b, 0);
    const text = await readFile(join(platform.dataDir, 'reports', generation.filePath!), 'utf8');
    let ticks = 0;
    for (const line of text.split('\r\n').slice(1))
      if (line) ticks += Number(line.slice(line.lastIndexOf(',') + 1));
    expect(ticks).toBe(expectedTicks);
    expect(await stopWorker(worker)).toBe(0);
  }, 120_000);
});
