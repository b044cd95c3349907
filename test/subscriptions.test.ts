// Gateway subscriptions over real NATS and real sockets: graphql-ws and SSE, snapshots, resume by
// cursor, tenancy and roles, and shared execution. KPI values are published on the KPI stream the way
// the calculator does, so that every count is exact (test/liveKpis.test.ts runs the real pipeline).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../db/pool.ts';
import { decodeCursor } from '../streams/cursor.ts';
import {
  createRedisPubSub,
  publishReportProgress,
  reportProgressChannel,
  type RedisPubSub,
} from '../lib/redis.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { services } from './support/services.ts';
import {
  gatewayMetric,
  publishInsight,
  publishInsights,
  publishKpiValues,
  rawSubscriber,
  sseSubscribe,
  wsClient,
  wsSubscribe,
} from './support/subscribers.ts';

const KPI_UPDATED = `subscription ($codes: [ID!]!, $after: String) {
  kpiUpdated(codes: $codes, after: $after) { value cursor kpi { code name unit } }
}`;
interface KpiValue {
  value: number | null;
  cursor: string;
  kpi: { code: string; name: string; unit: string | null };
}

let platform: TestPlatform;
let admin: string;
let viewer: string;

const define = async (code: string, name: string, unit: string) => {
  const { body } = await platform.graphql(
    `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`,
    {
      token: admin,
      variables: { input: { code, name, unit, eventName: `${code}.happened`, aggregation: 'COUNT' } },
    },
  );
  expect(body.errors).toBeUndefined();
};
const publish = (tenant: string, code: string, ...values: number[]) =>
  publishKpiValues(
    platform.nats.url,
    tenant,
    values.map((value) => ({ code, value })),
  );
const seqOf = (value: KpiValue) => decodeCursor(value.cursor)!;

beforeAll(async () => {
  platform = await startTestPlatform();
  admin = await platform.token('acme', ['admin']);
  viewer = await platform.token('acme', ['viewer']);
  await define('orders', 'Orders', 'count');
  await define('revenue', 'Revenue', 'EUR');
}, 60_000);
afterAll(() => platform?.stop());

describe('kpiUpdated over graphql-ws', () => {
  it('gives the current value first, then live values with kpi { name unit } from the metadata subgraph', async () => {
    await publish('acme', 'orders', 1);
    const client = wsClient(platform.gatewayUrl, viewer);
    const received = wsSubscribe<KpiValue>(
      client,
      KPI_UPDATED,
      { codes: ['orders', 'revenue'] },
      'kpiUpdated',
    );
    const [snapshot] = await received.until(1);
    expect(snapshot).toMatchObject({ value: 1, kpi: { code: 'orders', name: 'Orders', unit: 'count' } });
    await publish('acme', 'revenue', 99.5);
    await publish('acme', 'orders', 2);
    const values = await received.until(3);
    expect(values.slice(1).map((v) => [v.kpi.name, v.kpi.unit, v.value])).toEqual([
      ['Revenue', 'EUR', 99.5],
      ['Orders', 'count', 2],
    ]);
    const seqs = values.map(seqOf);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    received.close();
    await client.dispose();
  });

  it('resumes after a cursor: exactly the missed values, then live ones, none twice', async () => {
    const client = wsClient(platform.gatewayUrl, viewer);
    const first = wsSubscribe<KpiValue>(client, KPI_UPDATED, { codes: ['orders'] }, 'kpiUpdated');
    await first.until(1); // the snapshot
    await publish('acme', 'orders', 10, 11);
    const seen = await first.until(3);
    first.close();
    await client.dispose();

    const missed = await publish('acme', 'orders', 12, 13, 14);
    await publish('acme', 'revenue', 5); // another KPI: not for this subscriber
    const again = wsClient(platform.gatewayUrl, viewer);
    const resumed = wsSubscribe<KpiValue>(
      again,
      KPI_UPDATED,
      { codes: ['orders'], after: seen.at(-1)!.cursor },
      'kpiUpdated',
    );
    const replayed = await resumed.until(3);
    expect(replayed.map((v) => v.value)).toEqual([12, 13, 14]);
    expect(replayed.map(seqOf)).toEqual(missed);
    const live = await publish('acme', 'orders', 15);
    const all = await resumed.until(4);
    expect(all.map(seqOf)).toEqual([...missed, ...live]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(resumed.values).toHaveLength(4);
    resumed.close();
    await again.dispose();
  });

  it('keeps tenants apart and holds roles: another tenant sees nothing, an ingest token is refused', async () => {
    const globex = wsClient(platform.gatewayUrl, await platform.token('globex', ['viewer']));
    const intruder = wsSubscribe<KpiValue>(globex, KPI_UPDATED, { codes: ['orders'] }, 'kpiUpdated');
    const ingestOnly = wsClient(platform.gatewayUrl, await platform.token('acme', ['ingest']));
    const refused = wsSubscribe<KpiValue>(ingestOnly, KPI_UPDATED, { codes: ['orders'] }, 'kpiUpdated');
    const witness = wsClient(platform.gatewayUrl, viewer);
    const own = wsSubscribe<KpiValue>(witness, KPI_UPDATED, { codes: ['orders'] }, 'kpiUpdated');
    await own.until(1);
    await publish('acme', 'orders', 21, 22);
    await own.until(3);
    expect(intruder.values).toEqual([]);
    expect(intruder.errors).toEqual([]);
    expect(refused.values).toEqual([]);
    expect(refused.errors).toMatchObject([{ extensions: { code: 'FORBIDDEN' } }]);
    for (const r of [intruder, refused, own]) r.close();
    await Promise.all([globex.dispose(), ingestOnly.dispose(), witness.dispose()]);
  });

  it('closes a connection without a valid token with 4403', async () => {
    const closed = new Promise<number>((resolve) => {
      const client = wsClient(platform.gatewayUrl, 'not-a-token');
      client.on('closed', (event) => resolve((event as { code: number }).code));
      wsSubscribe(client, KPI_UPDATED, { codes: ['orders'] });
    });
    expect(await closed).toBe(4403);
  });

  it('runs one execution per event for a thousand identical subscribers', async () => {
    const clients = Array.from({ length: 10 }, () => wsClient(platform.gatewayUrl, viewer));
    const subscribers = Array.from({ length: 1_000 }, (_, i) =>
      wsSubscribe<KpiValue>(clients[i % 10]!, KPI_UPDATED, { codes: ['revenue'] }, 'kpiUpdated'),
    );
    await Promise.all(subscribers.map((s) => s.until(1))); // every snapshot
    const before = await executions();
    await publish('acme', 'revenue', 1, 2, 3);
    await Promise.all(subscribers.map((s) => s.until(4)));
    expect(
      subscribers.every(
        (s) =>
          s.values
            .slice(1)
            .map((v) => v.value)
            .join() === '1,2,3',
      ),
    ).toBe(true);
    expect(subscribers[0]!.values[3]!.kpi.name).toBe('Revenue');
    expect((await executions()) - before).toBe(3);
    for (const s of subscribers) s.close();
    await Promise.all(clients.map(async (c) => c.dispose()));
  }, 60_000);
});

describe('slow subscribers', () => {
  it('are conflated to the latest value per KPI and never slow the others', async () => {
    const blob = 'x'.repeat(50_000); // 200 values of 50 KB outgrow any socket buffer
    const query = `subscription { kpiUpdated(codes: ["revenue"]) { value dimensions } }`;
    const slow = await rawSubscriber(platform.gatewayUrl, viewer, query);
    const fast = wsClient(platform.gatewayUrl, viewer);
    const received = wsSubscribe<{ value: number }>(fast, query, {}, 'kpiUpdated');
    await received.until(1);
    await slow.next(); // the snapshot: the slow one is subscribed
    const conflatedBefore = await metric('pulsegraph_subscription_conflated_total');
    slow.pause();
    const values = Array.from({ length: 200 }, (_, i) => ({
      code: 'revenue',
      value: 1_000 + i,
      dimensions: { blob },
    }));
    await publishKpiValues(platform.nats.url, 'acme', values);
    const fastValues = await received.until(201, 30_000);
    expect(fastValues.slice(1).map((v) => v.value)).toEqual(values.map((v) => v.value));
    slow.resume();
    let last = 0;
    let count = 0;
    while (last !== 1_199) {
      last = ((await slow.next()) as { kpiUpdated: { value: number } }).kpiUpdated.value;
      count++;
    }
    expect(count).toBeLessThan(200);
    expect(await metric('pulsegraph_subscription_conflated_total')).toBeGreaterThan(conflatedBefore);
    slow.close();
    received.close();
    await fast.dispose();
  }, 60_000);

  it('closes a subscriber that stops reading with 1013 once its queue overflows, and keeps serving the others', async () => {
    // newInsights is not conflated: every value queues. 2,000 values of 20 KB outgrow the kernel's socket
    // buffers (a few MB on loopback), the 8 frames the gateway lets wait on a socket, and the queue of
    // 1,000 (SUBSCRIBER_QUEUE_LIMIT).
    const query = 'subscription { newInsights(context: "flood") { title } }';
    const slow = await rawSubscriber(platform.gatewayUrl, viewer, query);
    const fast = wsClient(platform.gatewayUrl, viewer);
    const received = wsSubscribe<{ title: string }>(fast, query, {}, 'newInsights');
    const active = () => metric('pulsegraph_subscriptions_active{transport="ws"}');
    await expect.poll(active, { timeout: 10_000 }).toBe(2);
    const overflowsBefore = await metric('pulsegraph_subscription_overflows_total');
    slow.pause();
    const blob = 'x'.repeat(20_000);
    const titles = Array.from({ length: 2_000 }, (_, i) => `flood ${i} ${blob}`);
    await publishInsights(
      platform.nats.url,
      'acme',
      titles.map((title, i) => ({ id: `flood-${i}`, context: 'flood', title })),
    );
    const fastTitles = (await received.until(2_000, 60_000)).map((v) => v.title);
    expect(fastTitles).toEqual(titles);
    await expect.poll(() => metric('pulsegraph_subscription_overflows_total')).toBe(overflowsBefore + 1);
    slow.resume();
    expect(await slow.closed).toEqual({
      code: 1013,
      reason: 'too slow: reconnect and resume from your last cursor',
    });
    // What it had been sent before the close arrives in order, with nothing skipped.
    const got: string[] = [];
    while (slow.unread)
      got.push(((await slow.next()) as { newInsights: { title: string } }).newInsights.title);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(2_000);
    expect(got).toEqual(titles.slice(0, got.length));
    received.close();
    await fast.dispose();
  }, 120_000);
});

describe('metricUpdates and newInsights', () => {
  it('serve the KPI stream as metrics and the INSIGHTS stream with kpi { name } resolved', async () => {
    const active = () => metric('pulsegraph_subscriptions_active{transport="ws"}');
    await expect.poll(active, { timeout: 10_000 }).toBe(0); // earlier tests' subscriptions are gone
    const client = wsClient(platform.gatewayUrl, viewer);
    const metrics = wsSubscribe<{ name: string; value: number; type: string }>(
      client,
      `subscription { metricUpdates(names: ["orders"]) { name value type metadata { aggregation interval } } }`,
      {},
      'metricUpdates',
    );
    const insights = wsSubscribe<{ title: string; severity: string; kpi: { name: string } }>(
      client,
      `subscription { newInsights(context: "orders") { title severity observed kpi { name } } }`,
      {},
      'newInsights',
    );
    // Neither field has a snapshot: publish once both are being served.
    await expect.poll(active, { timeout: 10_000 }).toBe(2);
    await publish('acme', 'orders', 41);
    await publishInsight(platform.nats.url, 'acme', {
      id: 'i-1',
      context: 'orders',
      kind: 'anomaly',
      severity: 'WARNING',
      title: 'Orders spiked',
      detail: null,
      kpi: { code: 'orders' },
      observed: 41,
      expected: 2,
      at: new Date().toISOString(),
    });
    expect(await metrics.until(1)).toEqual([
      { name: 'orders', value: 41, type: 'COUNTER', metadata: { aggregation: 'COUNT', interval: '24h' } },
    ]);
    expect(await insights.until(1)).toEqual([
      { title: 'Orders spiked', severity: 'WARNING', observed: 41, kpi: { name: 'Orders' } },
    ]);
    metrics.close();
    insights.close();
    await client.dispose();
  });
});

describe('kpiUpdated over SSE', () => {
  it('streams values with their cursor as event id, and resumes from Last-Event-ID', async () => {
    const stream = sseSubscribe<KpiValue>(
      platform.gatewayUrl,
      viewer,
      KPI_UPDATED,
      { codes: ['orders'] },
      { field: 'kpiUpdated' },
    );
    expect(await stream.status).toBe(200);
    await stream.until(1);
    await publish('acme', 'orders', 31);
    const values = await stream.until(2);
    expect(values[1]).toMatchObject({ value: 31, kpi: { name: 'Orders' } });
    expect(stream.ids).toEqual(values.map((v) => v.cursor));
    stream.close();

    const missed = await publish('acme', 'orders', 32, 33);
    const resumed = sseSubscribe<KpiValue>(
      platform.gatewayUrl,
      viewer,
      KPI_UPDATED,
      { codes: ['orders'] },
      {
        field: 'kpiUpdated',
        lastEventId: stream.ids.at(-1),
      },
    );
    expect((await resumed.until(2)).map(seqOf)).toEqual(missed);
    resumed.close();
  });

  it('answers 401 without a token and 403 for a role that may not subscribe', async () => {
    expect(
      await sseSubscribe(platform.gatewayUrl, undefined, KPI_UPDATED, { codes: ['orders'] }).status,
    ).toBe(401);
    const ingest = await platform.token('acme', ['ingest']);
    expect(await sseSubscribe(platform.gatewayUrl, ingest, KPI_UPDATED, { codes: ['orders'] }).status).toBe(
      403,
    );
  });
});

describe('reportProgress through the gateway (served by the reports subgraph over graphql-ws)', () => {
  const PROGRESS = `subscription ($id: ID!) { reportProgress(id: $id) { reportId generationId status progress message } }`;
  // A report of acme's: progress is only followed for a report of the caller's own tenant.
  const REPORT_ID = 'b2b2b2b2-0000-4000-8000-000000000002';
  const GENERATION_ID = 'c3c3c3c3-0000-4000-8000-000000000003';
  const channel = reportProgressChannel('acme', REPORT_ID);
  let redis: RedisPubSub;
  beforeAll(async () => {
    redis = createRedisPubSub(services().redisUrl);
    const admin = createPool(platform.adminUrl, 1);
    await admin.query(
      `INSERT INTO reports (tenant_id, id, name, type, config) VALUES ('acme', $1, 'Orders', 'ADHOC', '{}')`,
      [REPORT_ID],
    );
    // Its generation, queued: every subscriber first gets this stored state, and so is known to listen.
    await admin.query(
      `INSERT INTO report_generations (tenant_id, id, report_id, format) VALUES ('acme', $1, $2, 'CSV')`,
      [GENERATION_ID, REPORT_ID],
    );
    await admin.end();
  });
  afterAll(() => redis?.close());
  const listeners = async () =>
    ((await redis.getPublisher().pubsub('NUMSUB', channel)) as [string, number])[1];

  it('arrives over graphql-ws and SSE, each multiplexed over the gateway connection to the subgraph', async () => {
    const client = wsClient(platform.gatewayUrl, viewer);
    const overWs = wsSubscribe<{ status: string; progress: number }>(
      client,
      PROGRESS,
      { id: REPORT_ID },
      'reportProgress',
    );
    const overSse = sseSubscribe<{ status: string }>(
      platform.gatewayUrl,
      viewer,
      PROGRESS,
      { id: REPORT_ID },
      { field: 'reportProgress' },
    );
    const queued = {
      reportId: REPORT_ID,
      generationId: GENERATION_ID,
      status: 'QUEUED',
      progress: 0,
      message: null,
    };
    expect(await overWs.until(1)).toEqual([queued]);
    expect((await overSse.until(1)).map((p) => p.status)).toEqual(['QUEUED']);
    await expect.poll(listeners, { timeout: 10_000 }).toBe(1);
    const step = { reportId: REPORT_ID, generationId: GENERATION_ID, message: 'reading rollups' };
    await publishReportProgress(redis, 'acme', { ...step, status: 'RUNNING', progress: 0.5 });
    await publishReportProgress(redis, 'globex', { ...step, status: 'FAILED', progress: 1 });
    await publishReportProgress(redis, 'acme', {
      ...step,
      status: 'COMPLETED',
      progress: 1,
      message: 'done',
    });
    expect(await overWs.until(3)).toEqual([
      queued,
      { ...step, status: 'RUNNING', progress: 0.5 },
      { ...step, status: 'COMPLETED', progress: 1, message: 'done' },
    ]);
    expect((await overSse.until(3)).map((p) => p.status)).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
    overWs.close();
    overSse.close();
    await client.dispose();
    await expect.poll(listeners, { timeout: 10_000 }).toBe(0);
  });
});

const executions = () => metric('pulsegraph_subscription_executions_total{field="kpiUpdated"}');

const metric = (series: string) => gatewayMetric(platform.gatewayUrl, series);
