// The totals and series SQL over the suite's Postgres, as the app role under row-level security: they read
// only the totals asked for, add up the rows (sketches key by key), group by dimension values, and answer
// empty over none.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, withTenant, type TenantClient } from '../../db/pool.ts';
import { rollupsOf, sketchOf } from '../../test/support/rollupDeltas.ts';
import { createTestDatabase, type TestDatabase } from '../../test/support/services.ts';
import { rollupStore, segmentsOf, type RollupTotals, type TotalsColumn } from './rollupStore.ts';
import { mergeSketches } from './sketch.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

let database: TestDatabase;
let pool: pg.Pool;
const as = <T>(tenant: string, fn: (client: TenantClient) => Promise<T>) => withTenant(pool, tenant, fn);

// A percentile KPI, so that its rollups carry sketches too.
const revenue = {
  code: 'revenue',
  eventName: 'order.placed',
  aggregation: 'P95',
  valueField: 'amount',
  dimensions: ['country'],
};

const series = (tenant: string, totals: TotalsColumn[], groupBy: string[] = [], hours = [0, 3]) =>
  as(tenant, (client) =>
    rollupStore.series(client, {
      kpiCode: 'revenue',
      resolution: '1h',
      from: new Date(T0 + hours[0]! * HOUR),
      to: new Date(T0 + hours[1]! * HOUR),
      intervalMs: HOUR,
      dims: {},
      groupBy,
      totals,
    }),
  );

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool(database.appUrl);
  const acme = rollupsOf(revenue, T0, [
    [
      ['DE', [10, 30]],
      ['FR', [5]],
    ],
    [],
    [['DE', [7, 1, 4]]],
  ]);
  // A second KPI of the tenant (no sketches), for totals of several KPIs in one query.
  const orders = rollupsOf({ ...revenue, code: 'orders', aggregation: 'SUM' }, T0, [[['DE', [1, 2]]]]);
  await as('acme', (client) => rollupStore.apply(client, 'acme', [...acme, ...orders], []));
  const globex = rollupsOf(revenue, T0, [[['DE', [1000]]]]);
  await as('globex', (client) => rollupStore.apply(client, 'globex', globex, []));
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('rollupStore.series', () => {
  it('adds up the rows of each bucket and reads only the totals asked for', async () => {
    expect(await series('acme', ['sum'])).toEqual([
      { at: new Date(T0), group: {}, count: 0, sum: 45, min: null, max: null, sketch: null },
      { at: new Date(T0 + 2 * HOUR), group: {}, count: 0, sum: 12, min: null, max: null, sketch: null },
    ]);
    expect(await series('acme', ['count', 'min', 'max'])).toEqual([
      { at: new Date(T0), group: {}, count: 3, sum: 0, min: 5, max: 30, sketch: null },
      { at: new Date(T0 + 2 * HOUR), group: {}, count: 3, sum: 0, min: 1, max: 7, sketch: null },
    ]);
    const [first] = await series('acme', ['sketch']);
    expect(first!.sketch).toEqual(mergeSketches([sketchOf([10, 30]), sketchOf([5])]));
  });

  it('groups by dimension values, every total at once', async () => {
    const rows = await series('acme', ['count', 'sum', 'min', 'max', 'sketch'], ['country']);
    expect(rows.map((r) => [r.at.getTime() - T0, r.group, r.count, r.sum, r.min, r.max])).toEqual(
      expect.arrayContaining([
        [0, { country: 'DE' }, 2, 40, 10, 30],
        [0, { country: 'FR' }, 1, 5, 5, 5],
        [2 * HOUR, { country: 'DE' }, 3, 12, 1, 7],
      ]),
    );
    expect(rows).toHaveLength(3);
    expect(rows.find((r) => r.group['country'] === 'FR')!.sketch).toEqual(sketchOf([5]));
  });

  it("answers no buckets over a range without rows, and never another tenant's", async () => {
    expect(await series('acme', ['sum'], [], [3, 5])).toEqual([]);
    expect(await series('acme', ['sum'], ['country'], [3, 5])).toEqual([]);
    expect(await series('initech', ['count', 'sum'])).toEqual([]);
    expect((await series('globex', ['sum'])).map((r) => r.sum)).toEqual([1000]);
  });
});

describe('rollupStore.totals', () => {
  const totals = (tenant: string, codes: string[], columns: TotalsColumn[], hours = [0, 3]) =>
    as(tenant, (client) =>
      rollupStore.totals(
        client,
        codes,
        segmentsOf(new Date(T0 + hours[0]! * HOUR), new Date(T0 + hours[1]! * HOUR)),
        {},
        columns,
      ),
    );
  const empty: RollupTotals = { count: 0, sum: 0, min: null, max: null, sketch: null };

  it('adds up the rows of the range per KPI, only the totals asked for', async () => {
    expect(await totals('acme', ['revenue'], ['sum'])).toEqual(new Map([['revenue', { ...empty, sum: 57 }]]));
    const all = await totals(
      'acme',
      ['revenue', 'orders', 'unknown'],
      ['count', 'sum', 'min', 'max', 'sketch'],
    );
    expect(all).toEqual(
      new Map([
        [
          'revenue',
          {
            count: 6,
            sum: 57,
            min: 1,
            max: 30,
            sketch: mergeSketches([sketchOf([10, 30]), sketchOf([5]), sketchOf([7, 1, 4])]),
          },
        ],
        ['orders', { count: 2, sum: 3, min: 1, max: 2, sketch: null }],
        ['unknown', empty],
      ]),
    );
  });

  it("answers empty totals over a range without rows, never another tenant's, and no query for none", async () => {
    const columns: TotalsColumn[] = ['count', 'sum', 'min', 'max', 'sketch'];
    expect(await totals('acme', ['revenue'], columns, [3, 5])).toEqual(new Map([['revenue', empty]]));
    expect(await totals('initech', ['revenue'], ['count', 'sketch'])).toEqual(new Map([['revenue', empty]]));
    expect(await totals('globex', ['revenue', 'orders'], ['sum', 'max'])).toEqual(
      new Map([
        ['revenue', { ...empty, sum: 1000, max: 1000 }],
        ['orders', empty],
      ]),
    );
    const noClient = {
      query: () => Promise.reject(new Error('no query expected')),
    } as unknown as TenantClient;
    const hour = segmentsOf(new Date(T0), new Date(T0 + HOUR));
    expect(await rollupStore.totals(noClient, ['revenue'], hour, {}, [])).toEqual(
      new Map([['revenue', empty]]),
    );
    expect(await rollupStore.totals(noClient, [], hour, {}, ['sum'])).toEqual(new Map());
  });
});
