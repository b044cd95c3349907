// Horizontal scale: two gateway processes, each routed to its own metrics subgraph instance, and two of
// each worker, over one NATS, Postgres and Redis. Shared state lives there, never in one process: live
// values reach subscribers on both gateways, a tenant's rate limit holds across both, ingest dedups
// across both, and two schedulers and two report workers queue and run each generation once.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/network.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import {
  startGatewayProcess,
  startServiceProcess,
  untilReady,
  type GatewayProcess,
  type ServiceProcess,
} from './support/processes.ts';
import {
  gatewayMetric,
  publishKpiValues,
  sseSubscribe,
  wsClient,
  wsSubscribe,
} from './support/subscribers.ts';

const QUERY_BUDGET = 30;
const KPI_UPDATED = `subscription { kpiUpdated(codes: ["visits"]) { value cursor kpi { name } } }`;
interface KpiValue {
  value: number;
  cursor: string;
  kpi: { name: string };
}

let platform: TestPlatform;
let admin: pg.Pool;
let gateways: [GatewayProcess, GatewayProcess];
const started: ServiceProcess[] = [];

async function post(
  url: string,
  token: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<{ status: number; body: { data?: Record<string, unknown>; errors?: unknown[] } }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as { data?: Record<string, unknown> } };
}

/** Starts a service process per script (each twice, say) and remembers it for cleanup. */
function startAll(scripts: string[], env: Record<string, string> = {}): ServiceProcess[] {
  const services = scripts.map((script) => startServiceProcess(platform, script, env));
  started.push(...services);
  return services;
}

beforeAll(async () => {
  platform = await startTestPlatform();
  admin = new pg.Pool({ connectionString: platform.adminUrl, max: 2 });
  const { body } = await platform.graphql(
    `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`,
    {
      token: await platform.token('acme', ['admin']),
      variables: { input: { code: 'visits', name: 'Visits', eventName: 'visit', aggregation: 'COUNT' } },
    },
  );
  expect(body.errors).toBeUndefined();
  await publishKpiValues(platform.nats.url, 'acme', [{ code: 'visits', value: 0 }]);

  // A second metrics subgraph, as its own process: gateway B routes to it, gateway A to the first.
  const metricsUrl = `http://127.0.0.1:${await freePort()}/graphql`;
  const [secondMetrics] = startAll(['subgraphs/metrics/server.ts'], {
    METRICS_PORT: new URL(metricsUrl).port,
  });
  await untilReady(secondMetrics!, metricsUrl);
  const budgets = {
    RATE_LIMIT_QUERIES_PER_MINUTE: String(QUERY_BUDGET),
    RATE_LIMIT_QUERIES_PER_MINUTE_PER_TOKEN: '0',
    // The minute's budget alone, answered at once: the queries below come one after another.
    RATE_LIMIT_BURST: '0',
    RATE_LIMIT_REFUSAL_DELAY_MS: '0',
  };
  gateways = await Promise.all([
    startGatewayProcess(platform, budgets),
    startGatewayProcess(platform, { ...budgets, SUBGRAPH_METRICS_URL: metricsUrl }),
  ]);
  started.push(...gateways);
}, 90_000);
afterAll(async () => {
  for (const service of started) await service.kill();
  await admin?.end();
  await platform?.stop();
});

describe('two gateway processes over one NATS, Postgres and Redis', () => {
  it('deliver every published KPI value to subscribers on both', async () => {
    const viewer = await platform.token('acme', ['viewer']);
    const client = wsClient(gateways[0].url, viewer);
    const onA = wsSubscribe<KpiValue>(client, KPI_UPDATED, {}, 'kpiUpdated');
    const onB = sseSubscribe<KpiValue>(gateways[1].url, viewer, KPI_UPDATED, {}, { field: 'kpiUpdated' });
    await Promise.all([onA.until(1), onB.until(1)]);
    await publishKpiValues(
      platform.nats.url,
      'acme',
      [1, 2, 3, 4, 5].map((value) => ({ code: 'visits', value })),
    );
    await Promise.all([onA.until(6), onB.until(6)]);
    expect(onA.values.map((v) => v.value)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(onB.values).toEqual(onA.values);
    expect(onB.values.at(-1)!.kpi).toEqual({ name: 'Visits' });
    onA.close();
    onB.close();
    await client.dispose();
  }, 30_000);

  it("hold a tenant's query budget across both: together they admit exactly the budget", async () => {
    const tenant = `budget-${Date.now()}`;
    const viewer = await platform.token(tenant, ['viewer']);
    // Alternating, one at a time: with a budget per process each gateway would admit 30, 60 in all.
    const statuses: number[] = [];
    for (let i = 0; i < 2 * QUERY_BUDGET; i++) {
      statuses.push((await post(gateways[i % 2]!.url, viewer, '{ kpis { code } }')).status);
    }
    expect(statuses).toEqual([
      ...Array.from({ length: QUERY_BUDGET }, () => 200),
      ...Array.from({ length: QUERY_BUDGET }, () => 429),
    ]);
    // Redis answered every check (a failed one admits the request unchecked).
    for (const gateway of gateways) {
      expect(await gatewayMetric(gateway.url, 'pulsegraph_rate_limit_fail_open_total')).toBe(0);
    }
  }, 30_000);
});

describe('ingest through two gateways and two metrics subgraphs, stored by two writers', () => {
  it('stores each event once when the same events are sent to both gateways at once', async () => {
    startAll(['subgraphs/metrics/writer.ts', 'subgraphs/metrics/writer.ts']);
    const ingest = await platform.token('dedup', ['ingest']);
    const now = Date.now();
    const batches = Array.from({ length: 10 }, (_, b) =>
      Array.from({ length: 100 }, (_, i) => ({
        id: `event-${b * 100 + i}`,
        type: 'USER_ACTION',
        name: 'visit',
        source: 'test',
        timestamp: new Date(now - i * 1_000).toISOString(),
      })),
    );
    const INGEST = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted duplicates } }`;
    const results = await Promise.all(
      batches.flatMap((events) =>
        gateways.map(async (gateway) => {
          const { body } = await post(gateway.url, ingest, INGEST, { events });
          expect(body.errors).toBeUndefined();
          return body.data!['ingestEvents'] as { accepted: number; duplicates: number };
        }),
      ),
    );
    const sum = (key: 'accepted' | 'duplicates') => results.reduce((n, r) => n + r[key], 0);
    expect([sum('accepted'), sum('duplicates')]).toEqual([1_000, 1_000]);

    const stored = async () =>
      (
        await admin.query<{ n: string; ids: string }>(
          "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events WHERE tenant_id = 'dedup'",
        )
      ).rows.map((r) => [Number(r.n), Number(r.ids)])[0];
    await expect.poll(stored, { timeout: 30_000, interval: 200 }).toEqual([1_000, 1_000]);
  }, 60_000);
});

describe('two report schedulers and two report workers', () => {
  it('queue one generation per tick and run every generation exactly once', async () => {
    const analyst = await platform.token('acme', ['analyst']);
    const CREATE = `mutation ($input: CreateReportInput!) { createReport(input: $input) { id } }`;
    const reportIds: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { body } = await post(gateways[i % 2]!.url, analyst, CREATE, {
        input: {
          name: `Visits ${i}`,
          type: 'SCHEDULED',
          format: 'CSV',
          schedule: { cron: '* * * * *' },
          config: {
            metrics: ['visits'],
            timeRange: {
              start: new Date(Date.now() - 3_600_000).toISOString(),
              end: new Date().toISOString(),
              interval: '1h',
            },
          },
        },
      });
      expect(body.errors).toBeUndefined();
      reportIds.push((body.data!['createReport'] as { id: string }).id);
    }
    // Started after the reports exist: on start each scheduler runs the tick of the last minute.
    startAll([
      'subgraphs/reports/scheduler.ts',
      'subgraphs/reports/scheduler.ts',
      'subgraphs/reports/worker.ts',
      'subgraphs/reports/worker.ts',
    ]);
    const GENERATE = `mutation ($id: ID!) { generateReport(id: $id) { id } }`;
    for (const [i, id] of reportIds.entries()) {
      for (const gateway of gateways) {
        const { body } = await post(gateway.url, analyst, GENERATE, { id });
        expect(body.errors, `report ${i}`).toBeUndefined();
      }
    }

    type Row = { report_id: string; trigger: string; status: string; attempts: number };
    const generations = async () =>
      (
        await admin.query<Row>(
          `SELECT report_id, trigger, status, attempts FROM report_generations
            WHERE tenant_id = 'acme' AND report_id = ANY($1::uuid[]) ORDER BY report_id, trigger`,
          [reportIds],
        )
      ).rows;
    const settled = (rows: Row[]) =>
      rows.filter((r) => r.trigger.startsWith('schedule:')).length >= reportIds.length &&
      rows.every((r) => r.status === 'COMPLETED' || r.status === 'FAILED');
    await expect
      .poll(async () => settled(await generations()), { timeout: 45_000, interval: 250 })
      .toBe(true);
    const rows = await generations();
    // Every generation ran once, on one worker.
    expect(rows.filter((r) => r.status !== 'COMPLETED' || r.attempts !== 1)).toEqual([]);
    for (const id of reportIds) {
      const mine = rows.filter((r) => r.report_id === id);
      expect(mine.filter((r) => r.trigger === 'manual')).toHaveLength(2);
      // One generation per tick, though two schedulers saw each tick.
      const ticks = mine.filter((r) => r.trigger.startsWith('schedule:')).map((r) => r.trigger);
      expect(ticks.length).toBeGreaterThan(0);
      expect(new Set(ticks).size).toBe(ticks.length);
    }
  }, 90_000);
});
