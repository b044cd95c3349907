// A report end to end through the public interfaces only: KPIs defined and events ingested through
// the gateway, the report created, generated and followed over graphql-ws through the gateway, its
// CSV downloaded from the gateway; a report worker and the pipeline's workers do the rest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { createRedisPubSub, reportProgressChannel } from '../lib/redis.ts';
import type { RunningService } from '../lib/service.ts';
import { startReportWorker } from '../subgraphs/reports/worker.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { wsClient, wsSubscribe } from './support/subscribers.ts';

const HOUR = 3_600_000;
const START = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
const COUNTRIES = ['DE', 'FR', 'NL'];
const events = Array.from({ length: 900 }, (_, i) => ({
  id: `order-${i}`,
  type: 'BUSINESS_EVENT',
  name: 'order.placed',
  source: 'web',
  timestamp: new Date(START + ((i * 11_987) % (3 * HOUR))).toISOString(),
  attributes: { amount: ((i * 37) % 1000) / 10, country: COUNTRIES[i % 3] },
}));
const cents = (n: number) => Math.round(n * 100);
const revenueCents = events.reduce((sum, e) => sum + cents(e.attributes.amount), 0);

const ORDERS_NOW = '{ kpi(code: "orders") { current { value } } }';
type OrdersNow = { kpi: { current: { value: number } | null } };

let platform: TestPlatform;
let worker: RunningService;
let admin: string;

async function graphql<T>(query: string, variables: Record<string, unknown> = {}, token = admin): Promise<T> {
  const { body } = await platform.graphql(query, { token, variables });
  expect(body.errors).toBeUndefined();
  return body.data as T;
}

beforeAll(async () => {
  platform = await startTestPlatform({ workers: true });
  worker = await startReportWorker(platform.config, createLogger('report-worker', 'silent'));
  admin = await platform.token('shop', ['admin']);
  const define = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`;
  const common = { eventName: 'order.placed', dimensions: ['country'] };
  await graphql(define, { input: { ...common, code: 'orders', name: 'Orders', aggregation: 'COUNT' } });
  await graphql(define, {
    input: {
      ...common,
      code: 'revenue',
      name: 'Revenue',
      unit: 'EUR',
      aggregation: 'SUM',
      valueField: 'amount',
    },
  });
  const ingest = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted } }`;
  await graphql(ingest, { events });
}, 90_000);
afterAll(async () => {
  await worker?.close();
  await platform?.stop();
});

describe('a report through the gateway', () => {
  it('is generated with live progress and downloads as a CSV that adds up to what was ingested', async () => {
    const orders = async () => (await graphql<OrdersNow>(ORDERS_NOW)).kpi.current?.value;
    await expect.poll(orders, { timeout: 30_000 }).toBe(events.length); // stored and rolled up
    const { createReport } = await graphql<{ createReport: { id: string; status: string } }>(
      `
        mutation ($input: CreateReportInput!) {
          createReport(input: $input) {
            id
            status
          }
        }
      `,
      {
        input: {
          name: 'Sales by country',
          type: 'ADHOC',
          format: 'CSV',
          config: {
            metrics: ['orders', 'revenue'],
            dimensions: ['country'],
            timeRange: {
              start: new Date(START).toISOString(),
              end: new Date(START + 3 * HOUR).toISOString(),
              interval: '1h',
            },
          },
        },
      },
    );
    expect(createReport.status).toBe('READY');

    const client = wsClient(platform.gatewayUrl, await platform.token('shop', ['viewer']));
    const progress = wsSubscribe<{ status: string; progress: number }>(
      client,
      `subscription ($id: ID!) { reportProgress(id: $id) { status progress message generationId } }`,
      { id: createReport.id },
      'reportProgress',
    );
    const redis = createRedisPubSub(platform.config.REDIS_URL!);
    const channel = reportProgressChannel('shop', createReport.id);
    const listening = async () =>
      ((await redis.getPublisher().pubsub('NUMSUB', channel)) as [string, number])[1];
    await expect.poll(listening, { timeout: 10_000 }).toBe(1); // the subscription reached Redis
    await redis.close();
    const { generateReport } = await graphql<{ generateReport: { id: string; status: string } }>(
      `
        mutation ($id: ID!) {
          generateReport(id: $id) {
            id
            status
          }
        }
      `,
      { id: createReport.id },
    );
    expect(generateReport.status).toBe('QUEUED');
    await expect.poll(() => progress.values.at(-1)?.status, { timeout: 30_000 }).toBe('COMPLETED');
    const statuses = progress.values.map((p) => p.status);
    expect(statuses).toContain('RUNNING');
    expect(statuses.indexOf('RUNNING')).toBeLessThan(statuses.indexOf('COMPLETED'));
    progress.close();
    await client.dispose();

    const { report } = await graphql<{
      report: { status: string; lastRun: { id: string; rowCount: number; downloadUrl: string } };
    }>(
      `
        query ($id: ID!) {
          report(id: $id) {
            status
            lastRun {
              id
              rowCount
              downloadUrl
            }
          }
        }
      `,
      { id: createReport.id },
    );
    expect(report.status).toBe('COMPLETED');
    expect(report.lastRun.id).toBe(generateReport.id);
    const url = new URL(report.lastRun.downloadUrl, platform.gatewayUrl);
    const response = await fetch(url, { headers: { authorization: `Bearer ${admin}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    const [header, ...rows] = (await response.text())
      .split('\r\n')
      .filter(Boolean)
      .map((line) => line.split(','));
    expect(header).toEqual(['kpi', 'bucket', 'country', 'value']);
    expect(rows).toHaveLength(report.lastRun.rowCount);
    const total = (kpi: string) =>
      rows.filter((r) => r[0] === kpi).reduce((sum, r) => sum + cents(Number(r[3])), 0);
    expect(total('orders')).toBe(cents(events.length));
    expect(total('revenue')).toBe(revenueCents);

    expect((await fetch(url)).status).toBe(401);
    const globex = await platform.token('globex', ['admin']);
    expect((await fetch(url, { headers: { authorization: `Bearer ${globex}` } })).status).toBe(404);
  }, 60_000);
});
