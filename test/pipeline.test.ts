import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCursor } from '../streams/cursor.ts';
import { RELATIVE_ACCURACY } from '../subgraphs/metrics/sketch.ts';
import { waitForConsumerDrained } from './support/consumers.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

// Events of the last two hours, fixed by a seeded generator so the test can compute every answer itself.
const NOW = Date.now();
const COUNTRIES = ['DE', 'FR', 'NL', 'US'];
let seed = 7;
const random = () => (seed = (seed * 16_807) % 2_147_483_647) / 2_147_483_647;

interface TestEvent {
  id: string;
  type: string;
  name: string;
  source: string;
  timestamp: string;
  attributes: Record<string, unknown>;
}
const orders: TestEvent[] = Array.from({ length: 7_000 }, (_, i) => ({
  id: `order-${i}`,
  type: 'BUSINESS_EVENT',
  name: 'order.placed',
  source: 'web',
  timestamp: new Date(NOW - Math.floor(random() * 7_000_000)).toISOString(),
  attributes: { amount: Math.round(random() * 20_000) / 100, country: COUNTRIES[i % 4] },
}));
const requests: TestEvent[] = Array.from({ length: 3_000 }, (_, i) => ({
  id: `req-${i}`,
  type: 'SYSTEM_METRIC',
  name: 'api.request',
  source: 'api',
  timestamp: new Date(NOW - Math.floor(random() * 7_000_000)).toISOString(),
  attributes: { ms: Math.round(Math.exp(random() * 7)) },
}));
const all = [...orders, ...requests].sort(() => random() - 0.5);

const cents = (n: number) => Math.round(n * 100);
const sumOf = (events: TestEvent[]) =>
  events.reduce((s, e) => s + cents(e.attributes['amount'] as number), 0) / 100;
const nearestRank = (values: number[], q: number) =>
  [...values].sort((a, b) => a - b)[Math.ceil(q * values.length) - 1]!;

const INGEST = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted duplicates rejected { index message } } }`;
const DEFINE = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`;

let platform: TestPlatform;
let token: string;
const totals = { accepted: 0, duplicates: 0, rejected: [] as Array<{ index: number; message: string }> };

async function query<T>(text: string, variables?: Record<string, unknown>): Promise<T> {
  const { body } = await platform.graphql(text, { token, variables });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data as T;
}

async function current(code: string, dimensions?: Record<string, string>): Promise<number | null> {
  const data = await query<{ kpi: { current: { value: number | null } | null } }>(
    `query ($code: ID!, $d: JSON) { kpi(code: $code) { current(dimensions: $d) { value } } }`,
    { code, d: dimensions ?? null },
  );
  return data.kpi.current?.value ?? null;
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  platform = await startTestPlatform({ workers: true });
  token = await platform.token('shop', ['admin']);
  const kpis = [
    { code: 'orders', name: 'Orders', eventName: 'order.placed', aggregation: 'COUNT' },
    {
      code: 'revenue',
      name: 'Revenue',
      eventName: 'order.placed',
      aggregation: 'SUM',
      valueField: 'amount',
      dimensions: ['country'],
    },
    {
      code: 'aov',
      name: 'Average order',
      eventName: 'order.placed',
      aggregation: 'AVG',
      valueField: 'amount',
    },
    {
      code: 'latency.p95',
      name: 'Latency P95',
      eventName: 'api.request',
      aggregation: 'P95',
      valueField: 'ms',
    },
    { code: 'revenue.per-order-pct', name: 'x', aggregation: 'FORMULA', formula: 'revenue / orders * 100' },
  ];
  for (const input of kpis) await query(DEFINE, { input });
  for (let i = 0; i < all.length; i += 1_000) {
    const result = await query<{ ingestEvents: typeof totals }>(INGEST, { events: all.slice(i, i + 1_000) });
    totals.accepted += result.ingestEvents.accepted;
    totals.duplicates += result.ingestEvents.duplicates;
  }
  // A client that timed out re-sends 100 events, with 5 bad ones among them.
  const future = new Date(NOW + 86_400_000).toISOString();
  const resend = [
    ...all.slice(0, 50),
    { ...orders[0]!, id: 'bad-1', name: 'order placed' },
    { ...orders[0]!, id: 'bad-2', timestamp: future },
    { ...orders[0]!, id: 'bad 3' },
    ...all.slice(50, 100),
    { ...orders[0]!, id: 'bad-4', source: '' },
    { ...orders[0]!, id: 'bad-5', attributes: [1, 2] },
  ];
  const again = await query<{ ingestEvents: typeof totals }>(INGEST, { events: resend });
  totals.accepted += again.ingestEvents.accepted;
  totals.duplicates += again.ingestEvents.duplicates;
  totals.rejected = again.ingestEvents.rejected;
  await eventually(
    async () => (await current('orders')) === orders.length && (await current('latency.p95')) !== null,
  );
}, 180_000);
afterAll(() => platform?.stop());

describe('ingestion', () => {
  it('accepts every good event once, counts re-sent ones as duplicates and reports each bad one', () => {
    expect(totals.accepted).toBe(10_000);
    expect(totals.duplicates).toBe(100);
    expect(totals.rejected.map((r) => r.index)).toEqual([50, 51, 52, 103, 104]);
    expect(totals.rejected[0]!.message).toMatch(/^name: expected letters/);
    expect(totals.rejected[1]!.message).toMatch(/lies in the future/);
    expect(totals.rejected[4]!.message).toMatch(/^attributes: expected a JSON object/);
  });
});

describe('KPI values', () => {
  it('agree to the cent with sums computed here', async () => {
    expect(await current('orders')).toBe(7_000);
    expect(await current('revenue')).toBeCloseTo(sumOf(orders), 2);
    expect(await current('revenue', { country: 'DE' })).toBeCloseTo(
      sumOf(orders.filter((o) => o.attributes['country'] === 'DE')),
      2,
    );
    expect(await current('aov')).toBeCloseTo(sumOf(orders) / 7_000, 6);
    expect(await current('revenue.per-order-pct')).toBeCloseTo((sumOf(orders) / 7_000) * 100, 6);
  });

  it('estimates P95 within the sketch relative accuracy', async () => {
    const exact = nearestRank(
      requests.map((r) => r.attributes['ms'] as number),
      0.95,
    );
    const estimate = (await current('latency.p95'))!;
    expect(Math.abs(estimate - exact) / exact).toBeLessThanOrEqual(RELATIVE_ACCURACY);
  });

  it('series summed over buckets match, at every interval', async () => {
    const timeRange = (interval: string) => ({
      start: new Date(NOW - 3 * 3_600_000).toISOString(),
      end: new Date(NOW + 3_600_000).toISOString(),
      interval,
    });
    for (const interval of ['1m', '5m', '15m', '1h', '1d']) {
      const data = await query<{ kpi: { series: Array<{ value: number; at: string }> } }>(
        `query ($t: TimeRangeInput!) { kpi(code: "revenue") { series(timeRange: $t) { value at } } }`,
        { t: timeRange(interval) },
      );
      const total = data.kpi.series.reduce((s, v) => s + cents(v.value), 0) / 100;
      expect(total, interval).toBeCloseTo(sumOf(orders), 2);
    }
  });

  it('series of an AVG and a P95 KPI agree with the events of each hour', async () => {
    const start = Math.floor((NOW - 7_000_000) / 3_600_000) * 3_600_000;
    const t = { start: new Date(start).toISOString(), end: new Date(NOW + 1).toISOString(), interval: '1h' };
    const seriesOf = async (code: string) =>
      (
        await query<{ kpi: { series: Array<{ value: number | null; at: string }> } }>(
          `query ($code: ID!, $t: TimeRangeInput!) { kpi(code: $code) { series(timeRange: $t) { value at } } }`,
          { code, t },
        )
      ).kpi.series;
    const inHour = (events: TestEvent[], at: string) =>
      events.filter((e) => Math.floor(Date.parse(e.timestamp) / 3_600_000) * 3_600_000 === Date.parse(at));
    const [aov, p95] = [await seriesOf('aov'), await seriesOf('latency.p95')];
    expect(aov.map((v) => v.at)).toEqual(p95.map((v) => v.at));
    expect(aov.length).toBeGreaterThanOrEqual(2);
    for (const { at, value } of aov) {
      const hour = inHour(orders, at);
      if (!hour.length) expect(value, at).toBeNull();
      else expect(value, at).toBeCloseTo(sumOf(hour) / hour.length, 6);
    }
    for (const { at, value } of p95) {
      const hour = inHour(requests, at).map((r) => r.attributes['ms'] as number);
      if (!hour.length) expect(value, at).toBeNull();
      else
        expect(Math.abs(value! - nearestRank(hour, 0.95)) / nearestRank(hour, 0.95)).toBeLessThanOrEqual(
          RELATIVE_ACCURACY,
        );
    }
  });

  it('metrics(names, dimensions) groups by dimension values and agrees with the events', async () => {
    const data = await query<{
      metrics: Array<{ name: string; value: number; dimensions: { country: string } }>;
    }>(
      `query ($t: TimeRangeInput!) { metrics(names: ["revenue", "order.placed"], timeRange: $t, dimensions: ["country"]) {
         name value dimensions } }`,
      {
        t: {
          start: new Date(NOW - 3 * 3_600_000).toISOString(),
          end: new Date(NOW + 3_600_000).toISOString(),
          interval: '1h',
        },
      },
    );
    for (const country of COUNTRIES) {
      const reported = data.metrics
        .filter((m) => m.name === 'revenue' && m.dimensions.country === country)
        .reduce((s, m) => s + cents(m.value), 0);
      expect(reported / 100, country).toBeCloseTo(
        sumOf(orders.filter((o) => o.attributes['country'] === country)),
        2,
      );
    }
    const raw = data.metrics.filter((m) => m.name === 'order.placed').reduce((s, m) => s + m.value, 0);
    expect(raw).toBe(7_000);
  });

  it('backfills a KPI defined after its events arrived', async () => {
    await query(DEFINE, {
      input: {
        code: 'orders.max',
        name: 'Largest order',
        eventName: 'order.placed',
        aggregation: 'MAX',
        valueField: 'amount',
      },
    });
    const expected = Math.max(...orders.map((o) => o.attributes['amount'] as number));
    await eventually(async () => (await current('orders.max')) === expected);
    // Redefining the KPI rebuilds its rollups for the new definition.
    await query(DEFINE, {
      input: {
        code: 'orders.max',
        name: 'Smallest order',
        eventName: 'order.placed',
        aggregation: 'MIN',
        valueField: 'amount',
      },
    });
    const smallest = Math.min(...orders.map((o) => o.attributes['amount'] as number));
    await eventually(async () => (await current('orders.max')) === smallest);
  });

  it('publishes current values on kpi.<tenant>.<code> with increasing sequences', async () => {
    const nc = await connect({ servers: platform.nats.url });
    try {
      const consumer = await jetstream(nc).consumers.get('KPI', {
        filter_subjects: 'kpi.shop.orders',
        deliver_policy: DeliverPolicy.All,
      });
      const seen: Array<{ seq: number; value: number }> = [];
      await eventually(async () => {
        const batch = await consumer.fetch({ max_messages: 100, expires: 1_000 });
        for await (const m of batch)
          seen.push({ seq: m.seq, value: m.json<{ payload: { value: number } }>().payload.value });
        return seen.at(-1)?.value === 7_000;
      });
      const seqs = seen.map((s) => s.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      // current's cursor is the position of the KPI's latest value in the stream.
      const data = await query<{ kpi: { current: { cursor: string } } }>(
        `{ kpi(code: "orders") { current { cursor } } }`,
      );
      expect(decodeCursor(data.kpi.current.cursor)).toBe(seqs.at(-1));
      // The metrics subgraph reads the sequence only when the cursor is selected: asked straight, through
      // a fragment (the gateway's plans inline them), it is the same.
      const { body } = await platform.graphql(
        `{ _entities(representations: [{ __typename: "Kpi", code: "orders" }]) {
             ... on Kpi { current { value ...Position } } } }
         fragment Position on KpiValue { cursor }`,
        { token, url: platform.subgraphUrls.metrics },
      );
      expect(body).toEqual({
        data: { _entities: [{ current: { value: 7_000, cursor: data.kpi.current.cursor } }] },
      });
    } finally {
      await nc.close();
    }
  });
});

describe('poison messages on EVENTS', () => {
  it('are terminated while the events around them are stored, and the consumer does not stall', async () => {
    const nc = await connect({ servers: platform.nats.url });
    try {
      const js = jetstream(nc);
      await js.publish('events.shop.order.placed', 'not json at all', { msgID: 'poison-1' });
      await js.publish('events.shop.order.placed', JSON.stringify({ tenant: 'shop' }), { msgID: 'poison-2' });
      const { body } = await platform.graphql(INGEST, {
        token,
        variables: { events: [{ ...orders[0]!, id: 'after-poison' }] },
      });
      expect(body.data).toEqual({ ingestEvents: { accepted: 1, duplicates: 0, rejected: [] } });
      await eventually(async () => (await current('orders')) === orders.length + 1);
      await waitForConsumerDrained(platform.nats.url, 'EVENTS', 'writer');
    } finally {
      await nc.close();
    }
  });
});
