// DATABASE_READ_URL: reads that tolerate lag (series, metrics, insight listings, report values) go to a hot
// standby of the platform's Postgres; current values, definitions and everything after a write stay on
// the primary. The standby streams from a primary of this file's own; pausing its WAL replay makes the
// two differ, so every answer shows where it was read.
import { rm } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { register } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, withTenant, withTenantRead } from '../db/pool.ts';
import { createReadPool } from '../db/readPool.ts';
import { createLogger } from '../lib/logger.ts';
import { startLocalPlatform, type LocalPlatform } from '../scripts/localPlatform.ts';
import { startPostgres, startStandby, type PostgresHandle } from '../scripts/localServices.ts';
import { freePort, pollUntil } from '../scripts/network.ts';
import { insightStore } from '../subgraphs/insights/store.ts';
import { reportRows, type ReportDataRow } from '../subgraphs/reports/reportRows.ts';
import { services, TEST_APP_PASSWORD } from './support/services.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

const NOW = Date.now();
const HOUR = 3_600_000;
const DEFINE = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`;
const INGEST = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted } }`;
const RANGE = {
  start: new Date(Math.floor(NOW / HOUR) * HOUR - HOUR).toISOString(),
  end: new Date(Math.floor(NOW / HOUR) * HOUR + HOUR).toISOString(),
  interval: '1h',
};

let dir: string;
let primary: PostgresHandle;
let standby: PostgresHandle;
let platform: LocalPlatform;
let token: string;
let sent = 0;

/** Runs sql as superuser on a cluster's `postgres` database. */
async function onCluster<T extends pg.QueryResultRow>(cluster: PostgresHandle, sql: string): Promise<T[]> {
  const url = new URL(cluster.adminUrl);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Waits until the standby has replayed everything the primary has written so far. */
async function caughtUp(): Promise<void> {
  const [position] = await onCluster<{ lsn: string }>(primary, 'SELECT pg_current_wal_lsn()::text AS lsn');
  const lsn = position!.lsn;
  const replayed = () =>
    onCluster<{ done: boolean }>(standby, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AS done`).then(
      (rows) => rows[0]!.done,
    );
  expect(await pollUntil(replayed, { timeoutMs: 20_000 })).toBe(true);
}

/** Holds the standby's replay (it still receives WAL) until fn is done, then lets it catch up. */
async function withReplayPaused(fn: () => Promise<void>): Promise<void> {
  await onCluster(standby, 'SELECT pg_wal_replay_pause()');
  const paused = async () =>
    (await onCluster<{ state: string }>(standby, 'SELECT pg_get_wal_replay_pause_state() AS state'))[0]!
      .state === 'paused';
  expect(await pollUntil(paused, { timeoutMs: 10_000 })).toBe(true);
  try {
    await fn();
  } finally {
    await onCluster(standby, 'SELECT pg_wal_replay_resume()');
  }
  await caughtUp();
}

async function query<T>(text: string, variables?: Record<string, unknown>): Promise<T> {
  const { body } = await platform.graphql(text, { token, variables });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data as T;
}

async function ingest(count: number): Promise<void> {
  const events = Array.from({ length: count }, () => ({
    id: `order-${sent++}`,
    type: 'BUSINESS_EVENT',
    name: 'order.placed',
    source: 'web',
    timestamp: new Date(NOW - 60_000).toISOString(),
    attributes: { country: 'DE' },
  }));
  expect(await query(INGEST, { events })).toEqual({ ingestEvents: { accepted: count } });
}

const current = async (code: string) =>
  (await query<{ kpi: { current: { value: number } } }>(`{ kpi(code: "${code}") { current { value } } }`)).kpi
    .current.value;
const seriesOf = async (code: string) =>
  (
    await query<{ kpi: { series: Array<{ value: number }> } }>(
      `query ($t: TimeRangeInput!) { kpi(code: "${code}") { series(timeRange: $t) { value } } }`,
      { t: RANGE },
    )
  ).kpi.series.map((v) => v.value);
const total = (values: number[]) => values.reduce((s, v) => s + v, 0);

beforeAll(async () => {
  dir = await scratchDir('replica');
  primary = await startPostgres({ dataDir: join(dir, 'primary'), persistent: false });
  standby = await startStandby(primary, { dataDir: join(dir, 'standby') });
  platform = await startLocalPlatform({
    clusterAdminUrl: primary.adminUrl,
    appPassword: TEST_APP_PASSWORD,
    redisUrl: services().redisUrl,
    workers: true,
    readReplica: async (appUrl) => {
      await caughtUp(); // the database and its migrations are on the standby before any service connects
      const url = new URL(appUrl);
      url.port = String(standby.port);
      return url.toString();
    },
  });
  token = await platform.token('shop', ['admin']);
  await query(DEFINE, {
    input: { code: 'orders', name: 'Orders', eventName: 'order.placed', aggregation: 'COUNT' },
  });
  await ingest(3);
  expect(await pollUntil(async () => (await current('orders')) === 3, { timeoutMs: 30_000 })).toBe(true);
  await caughtUp();
}, 120_000);

afterAll(async () => {
  await platform?.stop();
  await standby?.stop();
  await primary?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('with DATABASE_READ_URL', () => {
  it('answers series and metrics from the replica, current values from the primary', async () => {
    expect(total(await seriesOf('orders'))).toBe(3);
    await withReplayPaused(async () => {
      await ingest(2);
      expect(await pollUntil(async () => (await current('orders')) === 5, { timeoutMs: 30_000 })).toBe(true);
      // The primary has 5 orders; the replica, replay held, still 3.
      expect(total(await seriesOf('orders'))).toBe(3);
      const { metrics } = await query<{ metrics: Array<{ value: number }> }>(
        `query ($t: TimeRangeInput!) { metrics(names: ["orders"], timeRange: $t) { value } }`,
        { t: RANGE },
      );
      expect(total(metrics.map((m) => m.value))).toBe(3);
    });
    expect(await pollUntil(async () => total(await seriesOf('orders')) === 5, { timeoutMs: 20_000 })).toBe(
      true,
    );
  });

  it('reads a KPI defined a moment ago, which the replica does not have yet, from the primary', async () => {
    await withReplayPaused(async () => {
      await query(DEFINE, {
        input: { code: 'placed', name: 'Placed', eventName: 'order.placed', aggregation: 'COUNT' },
      });
      // Its two hourly buckets, from the primary's definitions; the replica knows no such KPI (no buckets).
      expect(await seriesOf('placed')).toHaveLength(2);
      expect(await current('placed')).not.toBeNull();
    });
  });

  it('lists insights from the replica, and an insight asked for by id from the primary', async () => {
    const pool = createPool(platform.config.DATABASE_URL!, 1, 'replica-test');
    try {
      await withReplayPaused(async () => {
        await withTenant(pool, 'shop', (client) =>
          insightStore.open(
            client,
            'shop',
            { context: 'orders', kind: 'anomaly', episode: 'e1', direction: 'up', kpiCode: 'orders' },
            {
              severity: 'WARNING',
              title: 'Orders up',
              detail: 'more orders',
              observed: 5,
              expected: 3,
              at: new Date(),
            },
            {},
          ),
        );
        const listed = await query<{
          insights: Array<{ id: string }>;
          kpi: { insights: Array<{ id: string }> };
        }>(`{ insights(context: "orders") { id } kpi(code: "orders") { insights { id } } }`);
        expect(listed).toEqual({ insights: [], kpi: { insights: [] } });
        // By id, as the gateway resolves one the detector has just published: the primary's.
        const id = await withTenant(pool, 'shop', async (client) => {
          const { rows } = await client.query<{ id: string }>(
            `SELECT id FROM insights WHERE context = 'orders'`,
          );
          return rows[0]!.id;
        });
        const { body } = await platform.graphql(
          `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Insight { title } } }`,
          { token, variables: { r: [{ __typename: 'Insight', id }] }, url: platform.subgraphUrls.insights },
        );
        expect(body).toEqual({ data: { _entities: [{ title: 'Orders up' }] } });
      });
      const listed = await query<{ insights: Array<{ id: string; title: string }> }>(
        `{ insights(context: "orders") { id title } }`,
      );
      expect(listed.insights.map((i) => i.title)).toEqual(['Orders up']);
    } finally {
      await pool.end();
    }
  });

  it('computes report values on the replica with the definitions of the primary', async () => {
    const logger = createLogger('replica-test', 'silent');
    const pool = createPool(platform.config.DATABASE_URL!, 2, 'replica-test');
    const readPool = await createReadPool(pool, platform.config.DATABASE_READ_URL, {
      max: 2,
      name: 'replica-test',
      logger,
    });
    const config = { metrics: ['orders'], dimensions: [], filters: [], timeRange: RANGE };
    const rowsNow = async () => {
      const rows: ReportDataRow[] = [];
      for await (const row of reportRows({ pool, readPool }, 'shop', config)) rows.push(row);
      return rows;
    };
    try {
      await withReplayPaused(async () => {
        await ingest(4);
        expect(await pollUntil(async () => (await current('orders')) === 9, { timeoutMs: 30_000 })).toBe(
          true,
        );
        expect(total((await rowsNow()).map((r) => r.value ?? 0))).toBe(5);
      });
      expect(total((await rowsNow()).map((r) => r.value ?? 0))).toBe(9);
    } finally {
      await readPool.end();
      await pool.end();
    }
  });
});

describe('the read pool', () => {
  const logger = createLogger('replica-test', 'silent');
  const fallbacksFor = async (reason: string) =>
    (await register.getSingleMetric('pulsegraph_db_replica_fallback_total')!.get()).values
      .filter((v) => v.labels['pool'] === 'fallback-test' && v.labels['reason'] === reason)
      .reduce((s, v) => s + v.value, 0);
  /** Runs fn with a read pool of the platform's primary and `replicaUrl` (the standby by default). */
  const withReadPool = async (
    fn: (readPool: Awaited<ReturnType<typeof createReadPool>>) => Promise<void>,
    options: { replicaUrl?: string; retryMs?: number } = {},
  ) => {
    const pool = createPool(platform.config.DATABASE_URL!, 1, 'fallback-test');
    const readPool = await createReadPool(pool, options.replicaUrl ?? platform.config.DATABASE_READ_URL, {
      max: 1,
      name: 'fallback-test',
      logger,
      retryMs: options.retryMs,
    });
    try {
      await fn(readPool);
    } finally {
      await readPool.end();
      await pool.end();
    }
  };
  /** Whether a client of the read pool is connected to the standby. */
  const readsStandby = async (readPool: Awaited<ReturnType<typeof createReadPool>>) => {
    const client = await readPool.connect();
    try {
      return (await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby')).rows[0]!
        .standby;
    } finally {
      client.release();
    }
  };

  it('reads from the primary while the replica cannot be reached, and counts it', async () => {
    const down = new URL(platform.config.DATABASE_URL!);
    down.port = String(await freePort()); // nothing listens there
    await withReadPool(
      async (readPool) => {
        const before = await fallbacksFor('unreachable');
        expect(await readsStandby(readPool)).toBe(false);
        expect((await fallbacksFor('unreachable')) - before).toBe(1);
      },
      { replicaUrl: down.toString() },
    );
  });

  it('runs a read whose replica connection is lost midway again on the primary, and counts it', async () => {
    await withReadPool(async (readPool) => {
      const before = await fallbacksFor('connection_lost');
      const attempts: boolean[] = [];
      const answer = await withTenantRead(readPool, 'shop', async (client) => {
        const { rows } = await client.query<{ pid: number; standby: boolean }>(
          'SELECT pg_backend_pid() AS pid, pg_is_in_recovery() AS standby',
        );
        attempts.push(rows[0]!.standby);
        // The first attempt's backend on the standby ends under it, as when the replica restarts.
        if (attempts.length === 1) await onCluster(standby, `SELECT pg_terminate_backend(${rows[0]!.pid})`);
        const { rows: counted } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM kpis');
        return counted[0]!.n;
      });
      expect(attempts).toEqual([true, false]);
      expect(answer).toBeGreaterThan(0);
      expect((await fallbacksFor('connection_lost')) - before).toBe(1);
    });
  });

  it('fails a read on the replica as the primary would when its connection is not the cause', async () => {
    await withReadPool(async (readPool) => {
      let attempts = 0;
      await expect(
        withTenantRead(readPool, 'shop', async (client) => {
          attempts++;
          return client.query('SELECT no_such_column FROM kpis');
        }),
      ).rejects.toThrow('column "no_such_column" does not exist');
      expect(attempts).toBe(1);
    });
  });

  it('shows how far the replica is behind on /metrics, and zero once it has caught up', async () => {
    const lag = async () => {
      const values = async (name: string) =>
        (await register.getSingleMetric(name)!.get()).values.find((v) => v.labels['pool'] === 'fallback-test')
          ?.value;
      return {
        bytes: await values('pulsegraph_db_replica_lag_bytes'),
        seconds: await values('pulsegraph_db_replica_lag_seconds'),
      };
    };
    await withReadPool(async () => {
      // The platform's services write now and then, so caught up is something to wait for.
      const caughtUpNow = async () => (await lag()).bytes === 0;
      expect(await pollUntil(caughtUpNow, { timeoutMs: 10_000 })).toBe(true);
      await withReplayPaused(async () => {
        await onCluster(
          primary,
          'CREATE TABLE IF NOT EXISTS lag_probe (n int); INSERT INTO lag_probe VALUES (1)',
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
        const behind = await lag();
        expect(behind.bytes).toBeGreaterThan(0);
        expect(behind.seconds).toBeGreaterThan(0.1);
      });
      expect(await pollUntil(caughtUpNow, { timeoutMs: 10_000 })).toBe(true);
    });
  });

  it('keeps reads on the primary for the retry window after the replica was unreachable, then tries it again', async () => {
    // A TCP proxy in front of the standby: while `down`, it hangs up on every connection it is given.
    let down = true;
    let attempts = 0;
    const sockets = new Set<Socket>();
    const proxy = createServer((socket) => {
      attempts++;
      if (down) return void socket.destroy();
      const upstream = createConnection(standby.port, '127.0.0.1');
      for (const end of [socket, upstream]) {
        sockets.add(end);
        end.on('error', () => undefined);
      }
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const url = new URL(platform.config.DATABASE_READ_URL!);
    url.port = String((proxy.address() as { port: number }).port);
    const retryMs = 1_500;
    try {
      await withReadPool(
        async (readPool) => {
          const opened = Date.now();
          expect(attempts).toBe(1); // the check at start, hung up on
          expect(await readsStandby(readPool)).toBe(false);
          down = false;
          // Reachable again, but inside the window: the primary still, without trying the replica.
          expect(await readsStandby(readPool)).toBe(false);
          expect(attempts).toBe(1);
          expect(Date.now() - opened).toBeLessThan(retryMs);
          await new Promise((resolve) => setTimeout(resolve, retryMs - (Date.now() - opened) + 100));
          expect(await readsStandby(readPool)).toBe(true);
          expect(attempts).toBe(2);
        },
        { replicaUrl: url.toString(), retryMs },
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('refuses at start a replica role that could read across tenants', async () => {
    const pool = createPool(platform.config.DATABASE_URL!, 1, 'fallback-test');
    const superuser = new URL(standby.adminUrl);
    superuser.pathname = new URL(platform.config.DATABASE_URL!).pathname;
    try {
      await expect(
        createReadPool(pool, superuser.toString(), { max: 1, name: 'fallback-test', logger }),
      ).rejects.toThrow(/^invalid setting DATABASE_READ_URL: role postgres can bypass row-level security/);
    } finally {
      await pool.end();
    }
  });
});
