// Insights end to end over the real platform: events -> writer -> rollups -> KPI stream -> detector
// -> Postgres + INSIGHTS stream -> gateway (newInsights, insights, Kpi.insights through federation).
// First every worker runs on the real clock; then the test drives the detector's clock and hands it
// the KPI values itself, to walk episodes through their lives in seconds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import type { RunningService } from '../lib/service.ts';
import { startCalculator } from '../subgraphs/metrics/calculator.ts';
import { startWriter } from '../subgraphs/metrics/writer.ts';
import { startDetector } from '../subgraphs/insights/detector.ts';
import { waitForConsumerDrained } from './support/consumers.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { gatewayMetric, publishKpiValues, wsClient, wsSubscribe } from './support/subscribers.ts';

const MINUTE = 60_000;
const INGEST = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted rejected { message } } }`;
const DEFINE_KPI = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`;
const NEW_INSIGHTS = `subscription ($context: String!) {
  newInsights(context: $context) {
    id kind severity title detail observed expected at status openedAt closedAt kpi { code name }
  }
}`;

interface Insight {
  id: string;
  kind: string;
  severity: string;
  title: string;
  detail: string;
  observed: number;
  expected: number;
  status: string;
  openedAt: string;
  closedAt: string | null;
  kpi: { code: string; name: string };
}

interface EventInput {
  id: string;
  type: string;
  name: string;
  source: string;
  timestamp: string;
  attributes: Record<string, unknown>;
}

/** `perMinute` events of `name` in each minute of [from, to), spread over the minute. */
function steady(name: string, from: number, to: number, perMinute: number, attributes = () => ({})) {
  const events: EventInput[] = [];
  for (let minute = from; minute < to; minute += MINUTE)
    for (let i = 0; i < perMinute; i++) {
      const at = minute + Math.floor(((i + 0.5) * MINUTE) / perMinute);
      events.push({
        id: `${name}-${at}-${i}`,
        type: 'BUSINESS_EVENT',
        name,
        source: 'test',
        timestamp: new Date(at).toISOString(),
        attributes: attributes(),
      });
    }
  return events;
}

async function ingest(platform: TestPlatform, token: string, events: EventInput[]): Promise<void> {
  for (let i = 0; i < events.length; i += 5_000) {
    const { body } = await platform.graphql(INGEST, {
      token,
      variables: { events: events.slice(i, i + 5_000) },
    });
    expect(body.errors).toBeUndefined();
    expect((body.data!['ingestEvents'] as { rejected: unknown[] }).rejected).toEqual([]);
  }
}

/** Waits until a durable consumer has handled everything up to the end of its stream. */
const drained = (platform: TestPlatform, stream: string, durable: string, seq?: number) =>
  waitForConsumerDrained(platform.nats.url, stream, durable, { intervalMs: 50, ackedThrough: seq });

async function defineKpi(platform: TestPlatform, token: string, input: Record<string, unknown>) {
  const { body } = await platform.graphql(DEFINE_KPI, { token, variables: { input } });
  expect(body.errors).toBeUndefined();
  // The writer rebuilds the KPI's rollups from the stored events in one transaction.
  await drained(platform, 'METADATA', 'rollup-backfill');
}

const subscribersOf = (platform: TestPlatform) =>
  gatewayMetric(platform.gatewayUrl, 'pulsegraph_subscriptions_active{transport="ws"}');

// One platform for the file (a process holds one gateway), with the writer, the KPI calculator and a
// detector whose clock is the real one until the episode tests set it.
let platform: TestPlatform;
let admin: string;
let calculator: RunningService | undefined;
const workers: RunningService[] = [];
let clock: number | undefined;

beforeAll(async () => {
  platform = await startTestPlatform();
  admin = await platform.token('acme', ['admin']);
  const logger = createLogger('test', process.env['TEST_LOG'] ?? 'silent');
  workers.push(await startWriter(platform.config, logger));
  calculator = await startCalculator(platform.config, logger);
  workers.push(await startDetector(platform.config, logger, { now: () => clock ?? Date.now() }));
});
afterAll(async () => {
  await calculator?.close();
  for (const worker of workers.reverse()) await worker.close();
  await platform?.stop();
});

describe('anomalies on the live platform', () => {
  it('after three hours of steady orders, a spike arrives over newInsights within seconds', async () => {
    // Three hours of 20 orders a minute, stored before the KPI exists: defining it builds the whole
    // history at once, as a KPI defined over existing data does.
    const now = Date.now();
    const start = Math.floor(now / MINUTE) * MINUTE - 180 * MINUTE;
    await ingest(platform, admin, steady('checkout.completed', start, Math.floor(now / MINUTE) * MINUTE, 20));
    await drained(platform, 'EVENTS', 'writer');
    await defineKpi(platform, admin, {
      code: 'checkout.orders',
      name: 'Orders',
      eventName: 'checkout.completed',
      aggregation: 'COUNT',
    });

    const viewer = await platform.token('acme', ['viewer']);
    const client = wsClient(platform.gatewayUrl, viewer);
    const received = wsSubscribe<Insight>(
      client,
      NEW_INSIGHTS,
      { context: 'checkout.orders' },
      'newInsights',
    );
    await expect.poll(() => subscribersOf(platform), { timeout: 10_000 }).toBe(1);
    expect(received.values).toEqual([]);

    const spikeAt = Date.now();
    await ingest(
      platform,
      admin,
      steady('checkout.completed', spikeAt - 30_000, spikeAt, 2_000).slice(0, 2_000),
    );
    const [insight] = await received.until(1, 20_000);
    const seconds = (Date.now() - spikeAt) / 1000;
    console.log(`anomaly insight ${seconds.toFixed(1)} s after the spike was ingested: ${insight!.title}`);
    expect(seconds).toBeLessThan(15);
    expect(insight).toMatchObject({
      kind: 'anomaly',
      status: 'OPEN',
      closedAt: null,
      kpi: { code: 'checkout.orders', name: 'Orders' },
    });
    expect(['WARNING', 'CRITICAL']).toContain(insight!.severity);
    expect(insight!.observed).toBeGreaterThan(insight!.expected);
    expect(insight!.title).toMatch(/^Orders is \d+(\.\d)?x its level of the last 3 hours$/);
    expect(insight!.detail).toContain('expected');

    const listed = await platform.graphql(
      `{ insights(context: "checkout.orders") { id kind }
         kpi(code: "checkout.orders") { name insights(limit: 5) { id title kpi { name } } } }`,
      { token: viewer },
    );
    expect(listed.body.errors).toBeUndefined();
    expect(listed.body.data).toEqual({
      insights: [{ id: insight!.id, kind: 'anomaly' }],
      kpi: {
        name: 'Orders',
        insights: [{ id: insight!.id, title: insight!.title, kpi: { name: 'Orders' } }],
      },
    });
    // Another tenant sees nothing of it.
    const stranger = await platform.token('globex', ['viewer']);
    const theirs = await platform.graphql(`{ insights(context: "checkout.orders") { id } }`, {
      token: stranger,
    });
    expect(theirs.body.data).toEqual({ insights: [] });
    received.close();
    await client.dispose();
  }, 90_000);
});

describe('an episode, step by step on the detector clock', () => {
  // Half an hour ago, to the minute: every event of the scenario lies in the past.
  const T = Math.floor(Date.now() / MINUTE) * MINUTE - 30 * MINUTE;

  /** Moves the detector's clock, hands it a value of the KPI and waits until it is judged. */
  async function judgeAt(time: number, code: string, value: number | null = 1): Promise<void> {
    clock = time;
    const [seq] = await publishKpiValues(platform.nats.url, 'acme', [{ code, value }]);
    await drained(platform, 'KPI', 'detector', seq);
  }

  beforeAll(async () => {
    // From here on the test hands the detector every KPI value itself.
    await calculator?.close();
    calculator = undefined;
  });

  it('a lasting anomaly is one insight: opened, updated when it worsens, closed when the KPI recovers', async () => {
    const latency = (ms: number) => () => ({ latency_ms: ms + Math.round(Math.random() * 10) - 5 });
    await ingest(platform, admin, [
      ...steady('api.request', T - 180 * MINUTE, T, 20, latency(100)),
      ...steady('api.request', T, T + 5 * MINUTE, 20, latency(300)),
      ...steady('api.request', T + 5 * MINUTE, T + 10 * MINUTE, 20, latency(900)),
      ...steady('api.request', T + 10 * MINUTE, T + 25 * MINUTE, 20, latency(100)),
    ]);
    await drained(platform, 'EVENTS', 'writer');
    await defineKpi(platform, admin, {
      code: 'checkout.latency',
      name: 'Checkout latency',
      unit: 'ms',
      eventName: 'api.request',
      aggregation: 'P95',
      valueField: 'latency_ms',
    });
    const client = wsClient(platform.gatewayUrl, admin);
    const received = wsSubscribe<Insight>(
      client,
      NEW_INSIGHTS,
      { context: 'checkout.latency' },
      'newInsights',
    );
    await expect.poll(() => subscribersOf(platform), { timeout: 10_000 }).toBe(1);

    await judgeAt(T - 30_000, 'checkout.latency'); // the 5 minutes before T: usual
    await judgeAt(T + 1.5 * MINUTE, 'checkout.latency'); // 300 ms for 2 of the 5 minutes: 3x
    const [opened] = await received.until(1);
    expect(opened).toMatchObject({ kind: 'anomaly', severity: 'WARNING', status: 'OPEN' });
    expect(opened!.title).toMatch(/^Checkout latency is [23]\.\dx its level of the last 3 hours$/);
    expect(opened!.detail).toMatch(/^\d+ ms over the 5 minutes to \d\d:\d\d UTC, against \d+ ms expected/);

    await judgeAt(T + 3.5 * MINUTE, 'checkout.latency'); // still 3x: nothing new to say
    await judgeAt(T + 6.5 * MINUTE, 'checkout.latency'); // 900 ms: 9x, now CRITICAL
    const [, worse] = await received.until(2);
    expect(worse).toMatchObject({ id: opened!.id, severity: 'CRITICAL', status: 'OPEN' });
    expect(worse!.title).toMatch(/^Checkout latency is [89]\.\dx/);

    await judgeAt(T + 12.5 * MINUTE, 'checkout.latency'); // 2 minutes of 900 ms left in the window
    await judgeAt(T + 14.5 * MINUTE, 'checkout.latency'); // back to usual: recovery begins
    await judgeAt(T + 17 * MINUTE, 'checkout.latency'); // usual for 2.5 minutes: not yet
    await judgeAt(T + 20 * MINUTE, 'checkout.latency'); // usual for 5.5 minutes: closed
    const versions = await received.until(3);
    expect(versions).toHaveLength(3);
    const closed = versions[2]!;
    expect(closed).toMatchObject({ id: opened!.id, status: 'CLOSED', severity: 'CRITICAL' });
    expect(closed.closedAt).toBe(new Date(T + 20 * MINUTE).toISOString());
    expect(closed.title).toMatch(
      /^Checkout latency was up to [89]\.\dx its level of the last 3 hours; back to normal$/,
    );
    expect(closed.detail).toContain('Back within its usual range since');

    const { body } = await platform.graphql(`{ insights(context: "checkout.latency") { id status title } }`, {
      token: admin,
    });
    expect(body.data).toEqual({ insights: [{ id: opened!.id, status: 'CLOSED', title: closed.title }] });
    received.close();
    await client.dispose();
  }, 90_000);

  it('an alert rule opens a threshold insight while its condition holds, and closes it after, or with the rule', async () => {
    await defineKpi(platform, admin, {
      code: 'checkout.queue',
      name: 'Checkout queue',
      eventName: 'checkout.queued',
      aggregation: 'COUNT',
    });
    const analyst = await platform.token('acme', ['analyst']);
    const viewer = await platform.token('acme', ['viewer']);
    const define = `mutation { defineAlert(kpi: "checkout.queue", condition: ABOVE, value: 50, severity: CRITICAL) {
      id condition value severity kpi { code name } } }`;
    const refused = await platform.graphql(define, { token: viewer });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const unknown = await platform.graphql(
      `mutation { defineAlert(kpi: "nope", condition: BELOW, value: 1) { id } }`,
      { token: analyst },
    );
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const { body } = await platform.graphql(define, { token: analyst });
    expect(body.errors).toBeUndefined();
    const rule = body.data!['defineAlert'] as { id: string };
    expect(body.data!['defineAlert']).toMatchObject({
      condition: 'ABOVE',
      value: 50,
      severity: 'CRITICAL',
      kpi: { code: 'checkout.queue', name: 'Checkout queue' },
    });
    const listed = await platform.graphql(`{ kpi(code: "checkout.queue") { alerts { id } } }`, {
      token: viewer,
    });
    expect(listed.body.data).toEqual({ kpi: { alerts: [{ id: rule.id }] } });

    const client = wsClient(platform.gatewayUrl, viewer);
    const received = wsSubscribe<Insight>(client, NEW_INSIGHTS, { context: 'checkout.queue' }, 'newInsights');
    await expect.poll(() => subscribersOf(platform), { timeout: 10_000 }).toBe(1);
    const base = T + 30 * MINUTE;
    await judgeAt(base, 'checkout.queue', 20);
    await judgeAt(base + 10_000, 'checkout.queue', 80);
    await judgeAt(base + 20_000, 'checkout.queue', 95); // still above: the same insight, nothing new
    await judgeAt(base + 30_000, 'checkout.queue', 30); // back below: closes after a minute
    await judgeAt(base + 100_000, 'checkout.queue', 30);
    const [opened, closed] = await received.until(2);
    expect(opened).toMatchObject({
      kind: 'threshold',
      severity: 'CRITICAL',
      status: 'OPEN',
      title: 'Checkout queue is above 50: 80',
      observed: 80,
      expected: 50,
    });
    expect(closed).toMatchObject({
      id: opened!.id,
      status: 'CLOSED',
      title: 'Checkout queue was above 50; back to normal',
    });
    expect(closed!.detail).toContain('at its peak 95');

    // Above again: a new episode, a new insight. Deleting the rule closes it on the next value.
    await judgeAt(base + 110_000, 'checkout.queue', 70);
    const reopened = (await received.until(3))[2]!;
    expect(reopened).toMatchObject({ kind: 'threshold', status: 'OPEN', observed: 70 });
    expect(reopened.id).not.toBe(opened!.id);
    const deleted = await platform.graphql(`mutation { deleteAlert(id: "${rule.id}") }`, { token: analyst });
    expect(deleted.body.data).toEqual({ deleteAlert: true });
    await judgeAt(base + 120_000, 'checkout.queue', 70);
    expect((await received.until(4))[3]).toMatchObject({
      id: reopened.id,
      status: 'CLOSED',
      title: 'Checkout queue was above 50; the alert rule was deleted',
    });
    received.close();
    await client.dispose();
  }, 60_000);

  it('a KPI a week higher than the same day a week earlier raises a trend', async () => {
    const now = T + 25 * MINUTE;
    const hourly = (from: number, to: number, perHour: number) =>
      steady('page.viewed', from, to, 1).filter((_, i) => i % Math.round(60 / perHour) === 0);
    await ingest(platform, admin, [
      ...hourly(now - 9 * 86_400_000, now - 86_400_000, 10),
      ...hourly(now - 86_400_000, now, 20),
    ]);
    await drained(platform, 'EVENTS', 'writer');
    await defineKpi(platform, admin, {
      code: 'web.views',
      name: 'Page views',
      eventName: 'page.viewed',
      aggregation: 'COUNT',
    });
    await judgeAt(now, 'web.views');
    const { body } = await platform.graphql(
      `{ insights(context: "web.views") { kind severity title detail observed expected status } }`,
      { token: admin },
    );
    expect(body.data).toEqual({
      insights: [
        {
          kind: 'trend',
          severity: 'WARNING',
          title: 'Page views is up 100% week over week',
          detail: '480 over the last 24 hours, against 240 over the same 24 hours a week earlier (up 100%).',
          observed: 480,
          expected: 240,
          status: 'OPEN',
        },
      ],
    });
  }, 60_000);
});
