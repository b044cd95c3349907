import type { TenantClient } from '../../db/pool.ts';
import { evaluateFormula, formulaReferences, parseFormula } from '../../lib/formula.ts';
import { emptyTotals, rollupStore, segmentsOf, type RollupTotals, type TotalsColumn } from './rollupStore.ts';
import { RESOLUTIONS, type Resolution } from './rollups.ts';
import { sketchQuantile } from './sketch.ts';
import type { KpiDefinition } from './store.ts';

/** One computed value of a KPI. */
export interface ComputedValue {
  at: Date;
  value: number | null;
  dimensions: Record<string, string | null> | null;
}

const ADDITIVE = new Set(['COUNT', 'SUM', 'DISTINCT_COUNT']);
const QUANTILE: Record<string, number> = { P50: 0.5, P95: 0.95, P99: 0.99 };

/** The rollup totals each aggregation's value is computed from (valueFromTotals reads no others). */
const TOTALS_OF: Record<string, readonly TotalsColumn[]> = {
  COUNT: ['count'],
  SUM: ['sum'],
  AVG: ['count', 'sum'],
  MIN: ['min'],
  MAX: ['max'],
  P50: ['sketch'],
  P95: ['sketch'],
  P99: ['sketch'],
};

/** The KPI's value from added-up rollup rows: empty additive KPIs are 0, others null. */
export function valueFromTotals(aggregation: string, totals: RollupTotals, distinct = 0): number | null {
  switch (aggregation) {
    case 'COUNT':
      return totals.count;
    case 'SUM':
      return totals.sum;
    case 'DISTINCT_COUNT':
      return distinct;
    case 'AVG':
      return totals.count ? totals.sum / totals.count : null;
    case 'MIN':
      return totals.min;
    case 'MAX':
      return totals.max;
    default:
      return aggregation in QUANTILE && totals.sketch
        ? sketchQuantile(totals.sketch, QUANTILE[aggregation]!)
        : null;
  }
}

/** The coarsest rollup resolution whose buckets tile buckets of this interval. */
export function resolutionFor(interval: number): Resolution {
  return [...RESOLUTIONS].reverse().find((r) => interval % r.ms === 0)!.name;
}

/** Computes KPI values from rollups: over a range (current) or per bucket (series), formulas included. */
export class KpiCalculator {
  private readonly definitions: Map<string, KpiDefinition>;
  private readonly client: TenantClient;
  private readonly values = new Map<string, Promise<number | null>>();
  /** Totals asked for in the same tick over the same range and dimensions: one query for all their KPIs. */
  private readonly batches = new Map<
    string,
    { codes: Set<string>; columns: Set<TotalsColumn>; totals: Promise<Map<string, RollupTotals>> }
  >();

  constructor(client: TenantClient, definitions: Map<string, KpiDefinition>) {
    this.client = client;
    this.definitions = definitions;
  }

  /** The KPI's value over [from, to), restricted to rows with these dimension values. */
  valueOver(code: string, from: Date, to: Date, dims: Record<string, unknown> = {}): Promise<number | null> {
    // Memoised per calculator: a formula and the KPIs it is built on are often asked for together.
    const key = `${code}|${from.getTime()}|${to.getTime()}|${JSON.stringify(dims)}`;
    let value = this.values.get(key);
    if (!value) {
      value = this.computeOver(code, from, to, dims);
      this.values.set(key, value);
    }
    return value;
  }

  private async computeOver(
    code: string,
    from: Date,
    to: Date,
    dims: Record<string, unknown>,
  ): Promise<number | null> {
    const kpi = this.definitions.get(code);
    if (!kpi) return null;
    if (kpi.aggregation === 'FORMULA') {
      const ast = parseFormula(kpi.formula ?? '');
      const refs = formulaRefs(kpi);
      const values = await Promise.all(refs.map((ref) => this.valueOver(ref, from, to)));
      const inputs = new Map(refs.map((ref, i) => [ref, values[i]!]));
      return evaluateFormula(ast, (ref) => inputs.get(ref));
    }
    const totals = await this.totalsOf(code, from, to, dims, TOTALS_OF[kpi.aggregation] ?? []);
    const distinct =
      kpi.aggregation === 'DISTINCT_COUNT'
        ? await rollupStore.distinctCount(this.client, code, from, to, dims)
        : 0;
    return valueFromTotals(kpi.aggregation, totals, distinct);
  }

  /**
   * The KPI's rollup totals over [from, to). Asked for with others in the same tick (the KPIs of one
   * request, a formula's inputs), they share one query: the first to ask sends it a microtask later.
   */
  private totalsOf(
    code: string,
    from: Date,
    to: Date,
    dims: Record<string, unknown>,
    columns: readonly TotalsColumn[],
  ): Promise<RollupTotals> {
    if (!columns.length) return Promise.resolve(emptyTotals()); // a DISTINCT_COUNT reads none
    const key = `${from.getTime()}|${to.getTime()}|${JSON.stringify(dims)}`;
    let batch = this.batches.get(key);
    if (!batch) {
      const codes = new Set<string>();
      const wanted = new Set<TotalsColumn>();
      const totals = Promise.resolve().then(() => {
        this.batches.delete(key);
        return rollupStore.totals(this.client, [...codes], segmentsOf(from, to), dims, [...wanted]);
      });
      batch = { codes, columns: wanted, totals };
      this.batches.set(key, batch);
    }
    batch.codes.add(code);
    for (const column of columns) batch.columns.add(column);
    return batch.totals.then((byCode) => byCode.get(code)!);
  }

  /**
   * The KPI's values per bucket of `interval` (aligned to the Unix epoch) covering [from, to),
   * optionally grouped by dimensions. Additive KPIs report 0 for empty buckets.
   */
  async series(
    code: string,
    range: { from: Date; to: Date; interval: number },
    dims: Record<string, unknown> = {},
    groupBy: string[] = [],
  ): Promise<ComputedValue[]> {
    const kpi = this.definitions.get(code);
    if (!kpi) return [];
    const from = new Date(Math.floor(range.from.getTime() / range.interval) * range.interval);
    const to = range.to;
    if (kpi.aggregation === 'FORMULA') return this.formulaSeries(kpi, { from, to, interval: range.interval });
    const query = { kpiCode: code, from, to, intervalMs: range.interval, dims, groupBy };
    let rows: Array<{ at: Date; group: Record<string, string | null>; value: number | null }>;
    if (kpi.aggregation === 'DISTINCT_COUNT') {
      rows = (await rollupStore.distinctSeries(this.client, query)).map((r) => ({ ...r, value: r.count }));
    } else {
      const resolution = resolutionFor(range.interval);
      const totals = TOTALS_OF[kpi.aggregation] ?? [];
      rows = (await rollupStore.series(this.client, { ...query, resolution, totals })).map((r) => ({
        at: r.at,
        group: r.group,
        value: valueFromTotals(kpi.aggregation, r),
      }));
    }
    if (groupBy.length) return rows.map((r) => ({ at: r.at, value: r.value, dimensions: r.group }));
    const byTime = new Map(rows.map((r) => [r.at.getTime(), r.value]));
    const empty = ADDITIVE.has(kpi.aggregation) ? 0 : null;
    return bucketsOf(from, to, range.interval).map((at) => ({
      at,
      value: byTime.get(at.getTime()) ?? empty,
      dimensions: null,
    }));
  }

  private async formulaSeries(kpi: KpiDefinition, range: { from: Date; to: Date; interval: number }) {
    const ast = parseFormula(kpi.formula ?? '');
    const inputs = new Map<string, Map<number, number | null>>();
    for (const ref of formulaRefs(kpi)) {
      const values = await this.series(ref, range);
      inputs.set(ref, new Map(values.map((v) => [v.at.getTime(), v.value])));
    }
    return bucketsOf(range.from, range.to, range.interval).map((at) => ({
      at,
      value: evaluateFormula(ast, (ref) => inputs.get(ref)?.get(at.getTime())),
      dimensions: null,
    }));
  }
}

function formulaRefs(kpi: KpiDefinition): string[] {
  return formulaReferences(parseFormula(kpi.formula ?? ''));
}

function bucketsOf(from: Date, to: Date, interval: number): Date[] {
  const buckets: Date[] = [];
  for (let t = from.getTime(); t < to.getTime(); t += interval) buckets.push(new Date(t));
  return buckets;
}
