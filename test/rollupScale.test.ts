import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricReads } from '../lib/metrics.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const EVENTS = 1_000_000;
const DAYS = 30;
const END = Date.UTC(2026, 10, 1); // 30 days of history, ending at a day boundary

let platform: TestPlatform;
let token: string;

const readsBy = async (source: 'rollups' | 'events') =>
  (await metricReads.get()).values.find((v) => v.labels.source === source)?.value ?? 0;

beforeAll(async () => {
  platform = await startTestPlatform({ workers: true });
  token = await platform.token('scale', ['admin']);
  // A million stored events written straight into the store (ingesting them through the API is the
  // ingest benchmark's job); the KPI defined afterwards is then backfilled from them by the writer.
  const admin = new pg.Client({ connectionString: platform.adminUrl });
  await admin.connect();
  try {
    await admin.query(
      `INSERT INTO events (tenant_id, event_id, ts, type, name, source, attributes)
       SELECT 'scale', 'e' || i, $1::timestamptz + (i * $2::double precision) * interval '1 millisecond',
              'SYSTEM_METRIC', 'tick', 'bench', jsonb_build_object('v', i % 100)
         FROM generate_series(0, $3::int - 1) AS i`,
      [new Date(END - DAYS * 86_400_000), (DAYS * 86_400_000) / EVENTS, EVENTS],
    );
  } finally {
    await admin.end();
  }
  const define = `mutation { defineKpi(input: { code: "ticks", name: "Ticks", eventName: "tick", aggregation: SUM, valueField: "v" }) { code } }`;
  expect((await platform.graphql(define, { token })).body.errors).toBeUndefined();
}, 300_000);
afterAll(() => platform?.stop());

describe('series over a month of a million stored events', () => {
  it('answers 30 days at 1h from rollups, never from the raw events', async () => {
    const series = `query ($t: TimeRangeInput!) { kpi(code: "ticks") { series(timeRange: $t) { value } } }`;
    const t = {
      start: new Date(END - DAYS * 86_400_000).toISOString(),
      end: new Date(END).toISOString(),
      interval: '1h',
    };
    const expected = (EVENTS / 100) * ((99 * 100) / 2); // v cycles 0..99
    // The backfill runs in the writer; wait until the series shows all of it.
    const deadline = Date.now() + 240_000;
    let values: number[] = [];
    for (;;) {
      const { body } = await platform.graphql(series, { token, variables: { t } });
      values = (body.data as { kpi: { series: Array<{ value: number }> } }).kpi.series.map((v) => v.value);
      if (values.reduce((a, b) => a + b, 0) === expected || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(values).toHaveLength(DAYS * 24);
    expect(values.reduce((a, b) => a + b, 0)).toBe(expected);

    const before = { rollups: await readsBy('rollups'), events: await readsBy('events') };
    await platform.graphql(series, { token, variables: { t } });
    expect(await readsBy('rollups')).toBeGreaterThan(before.rollups);
    expect(await readsBy('events')).toBe(before.events);
  }, 300_000);
});
