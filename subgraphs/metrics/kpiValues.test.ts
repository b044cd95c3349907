// KpiCalculator over the suite's Postgres: each aggregation's value and series read the rollup totals they
// are computed from (and only those), so every one of them must come out right from the same rollup rows.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, withTenant } from '../../db/pool.ts';
import { rollupsOf, sketchOf } from '../../test/support/rollupDeltas.ts';
import { createTestDatabase, type TestDatabase } from '../../test/support/services.ts';
import { KpiCalculator } from './kpiValues.ts';
import { rollupStore } from './rollupStore.ts';
import { sketchQuantile } from './sketch.ts';
import type { KpiDefinition } from './store.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
const AGGREGATIONS = ['COUNT', 'SUM', 'AVG', 'MIN', 'MAX', 'P50', 'P95', 'P99'];
// Two countries in the first hour, none in the second, one in the third.
const HOURS: Array<Array<[string, number[]]>> = [
  [
    ['DE', [10, 30]],
    ['FR', [5]],
  ],
  [],
  [['DE', [7, 1, 4]]],
];

let database: TestDatabase;
let pool: pg.Pool;

const definition = (aggregation: string): KpiDefinition => ({
  code: aggregation.toLowerCase(),
  eventName: 'order.placed',
  aggregation,
  valueField: 'amount',
  dimensions: ['country'],
  formula: null,
  unit: null,
  window: '1h',
  refreshSeconds: 60,
  version: 1,
});
const definitions = new Map(AGGREGATIONS.map((a) => [a.toLowerCase(), definition(a)]));

/** What each aggregation makes of one hour's values. */
function expected(aggregation: string, values: number[]): number | null {
  if (aggregation === 'COUNT') return values.length;
  if (aggregation === 'SUM') return values.reduce((a, b) => a + b, 0);
  if (!values.length) return null;
  if (aggregation === 'AVG') return values.reduce((a, b) => a + b, 0) / values.length;
  if (aggregation === 'MIN') return Math.min(...values);
  if (aggregation === 'MAX') return Math.max(...values);
  return sketchQuantile(sketchOf(values), { P50: 0.5, P95: 0.95, P99: 0.99 }[aggregation]!);
}

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool(database.appUrl);
  const deltas = AGGREGATIONS.flatMap((aggregation) => rollupsOf(definition(aggregation), T0, HOURS));
  await withTenant(pool, 'acme', (client) => rollupStore.apply(client, 'acme', deltas, []));
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('KpiCalculator.series', () => {
  it.each(AGGREGATIONS)(
    'computes the series of a %s KPI hour by hour from the rollups',
    async (aggregation) => {
      const values = await withTenant(pool, 'acme', (client) =>
        new KpiCalculator(client, definitions).series(aggregation.toLowerCase(), {
          from: new Date(T0),
          to: new Date(T0 + HOURS.length * HOUR),
          interval: HOUR,
        }),
      );
      expect(values).toEqual(
        HOURS.map((countries, hour) => ({
          at: new Date(T0 + hour * HOUR),
          value: expected(
            aggregation,
            countries.flatMap(([, v]) => v),
          ),
          dimensions: null,
        })),
      );
    },
  );

  it('groups an AVG series by country', async () => {
    const values = await withTenant(pool, 'acme', (client) =>
      new KpiCalculator(client, definitions).series(
        'avg',
        { from: new Date(T0), to: new Date(T0 + HOUR), interval: HOUR },
        {},
        ['country'],
      ),
    );
    expect(values).toEqual(
      expect.arrayContaining([
        { at: new Date(T0), value: 20, dimensions: { country: 'DE' } },
        { at: new Date(T0), value: 5, dimensions: { country: 'FR' } },
      ]),
    );
    expect(values).toHaveLength(2);
  });
});

describe('KpiCalculator.valueOver', () => {
  it.each(AGGREGATIONS)(
    'computes the value of a %s KPI over the hours from the rollups',
    async (aggregation) => {
      const value = await withTenant(pool, 'acme', (client) =>
        new KpiCalculator(client, definitions).valueOver(
          aggregation.toLowerCase(),
          new Date(T0),
          new Date(T0 + HOURS.length * HOUR),
        ),
      );
      expect(value).toEqual(
        expected(
          aggregation,
          HOURS.flat().flatMap(([, v]) => v),
        ),
      );
    },
  );

  it('asks for the totals of KPIs wanted together in one query, formula inputs included', async () => {
    const withFormula = new Map(definitions).set('mean', {
      ...definition('FORMULA'),
      code: 'mean',
      formula: 'sum / count',
    });
    const queries: string[] = [];
    const values = await withTenant(pool, 'acme', (client) => {
      const counting = {
        query: (text: string, params: unknown[]) => {
          queries.push(text);
          return client.query(text, params);
        },
      } as unknown as typeof client;
      const calculator = new KpiCalculator(counting, withFormula);
      const to = new Date(T0 + HOURS.length * HOUR);
      return Promise.all(
        ['sum', 'max', 'p95', 'mean'].map((code) => calculator.valueOver(code, new Date(T0), to)),
      );
    });
    const all = HOURS.flat().flatMap(([, v]) => v);
    expect(values).toEqual([
      expected('SUM', all),
      expected('MAX', all),
      expected('P95', all),
      expected('SUM', all)! / expected('COUNT', all)!,
    ]);
    expect(queries).toHaveLength(1);
  });
});
