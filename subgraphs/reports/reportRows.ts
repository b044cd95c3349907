// The rows of a report, computed from rollups by the metrics subgraph's KPI calculator (the same
// numbers the `metrics` query serves) and walked in chunks of time so that memory stays flat however
// long the range: a chunk is computed, yielded row by row, and dropped before the next one is read.
import { withTenantRead, type Connectable } from '../../db/pool.ts';
import { intervalMs } from '../../lib/durations.ts';
import { KpiCalculator, type ComputedValue } from '../metrics/kpiValues.ts';
import { eventStore, type KpiDefinition } from '../metrics/store.ts';
import type { ReportConfig } from './store.ts';

/** One row of a report: a KPI's value in one time bucket for one combination of dimension values. */
export interface ReportDataRow {
  kpi: string;
  bucket: Date;
  /** One entry per dimension of the report (null for events that lacked it). */
  dimensions: Record<string, string | null>;
  value: number | null;
}

/** How far a report's rows have come, reported after each chunk. */
export interface ReportRowsProgress {
  kpi: string;
  /** Rows of this KPI so far, and the estimate of its total (exact without dimensions). */
  kpiRows: number;
  kpiEstimate: number;
  /** Rows of the whole report so far, and the estimate of its total. */
  rows: number;
  estimate: number;
  /** From 0 to 1, by the share of KPI × time buckets computed (exact whatever the dimensions). */
  fraction: number;
}

/** Raised when a report cannot be computed as configured (a KPI gone, an unsupported filter...). */
export class ReportConfigError extends Error {
  override name = 'ReportConfigError';
}

const DEFAULT_INTERVAL = '1h';
// A chunk is one query of the calculator. It spans at most MAX_BUCKETS_PER_CHUNK buckets and aims at
// about ROWS_PER_CHUNK rows: one per bucket without dimensions; with dimensions the first chunk is
// small and later ones are sized by the rows per bucket seen so far. Small chunks die young in V8's
// heap, so a long report does not grow it; CHUNKS_IN_FLIGHT overlap Postgres with the file writing.
const MAX_BUCKETS_PER_CHUNK = 10_000;
const FIRST_GROUPED_CHUNK = 100;
const ROWS_PER_CHUNK = 2_000;
const CHUNKS_IN_FLIGHT = 3;

/** A report's config checked against the tenant's KPIs, ready to walk. */
interface ReportPlan {
  kpis: KpiDefinition[];
  dimensions: string[];
  filter: Record<string, string | null>;
  from: number;
  to: number;
  interval: number;
  buckets: number;
}

/** The dimension columns of a report, in order, each once. */
export function reportDimensions(config: ReportConfig): string[] {
  return [...new Set(config.dimensions)];
}

/**
 * The rows of a report in order KPI (as listed) → bucket → dimension values. Without dimensions
 * every bucket has a row (empty ones are 0 for COUNT, SUM and DISTINCT_COUNT, null otherwise); with
 * dimensions, a bucket has one row per combination that has data in it. Filters are dimension
 * equalities (operator `eq`). Throws ReportConfigError when the config does not fit the tenant's KPIs.
 * `onProgress` is awaited after each chunk.
 */
export async function* reportRows(
  pools: { pool: Connectable; readPool: Connectable },
  tenant: string,
  config: ReportConfig,
  onProgress?: (progress: ReportRowsProgress) => void | Promise<void>,
): AsyncGenerator<ReportDataRow> {
  // The definitions from the primary (a KPI defined a moment ago is there), the values from the read
  // replica if there is one: the heaviest reads of the platform, and a report tolerates a little lag.
  const definitions = await withTenantRead(pools.pool, tenant, (client) => eventStore.definitions(client));
  const plan = planReport(config, definitions);
  const totalWork = plan.kpis.length * plan.buckets;
  let rows = 0;
  for (const [index, kpi] of plan.kpis.entries()) {
    const grouped = plan.dimensions.length > 0;
    const chunkOf = (from: number, buckets: number) => {
      const to = Math.min(plan.to, from + buckets * plan.interval);
      const values = withTenantRead(pools.readPool, tenant, (client) =>
        new KpiCalculator(client, definitions).series(
          kpi.code,
          { from: new Date(from), to: new Date(to), interval: plan.interval },
          plan.filter,
          grouped ? plan.dimensions : [],
        ),
      );
      // Awaited later; until then a failure must not count as unhandled.
      values.catch(() => undefined);
      return { from, to, values };
    };
    let kpiRows = 0;
    let chunkBuckets = grouped ? FIRST_GROUPED_CHUNK : ROWS_PER_CHUNK;
    // Postgres computes the next chunks while this one is yielded.
    const pending: Array<ReturnType<typeof chunkOf>> = [];
    let cursor = plan.from;
    const fill = () => {
      for (; pending.length < CHUNKS_IN_FLIGHT && cursor < plan.to; cursor = pending.at(-1)!.to) {
        pending.push(chunkOf(cursor, chunkBuckets));
      }
    };
    fill();
    for (let chunk = pending.shift(); chunk; chunk = pending.shift()) {
      const values = await chunk.values;
      if (grouped) {
        const buckets = (chunk.to - chunk.from) / plan.interval;
        chunkBuckets = nextChunkBuckets(chunkBuckets, values.length / buckets);
      }
      fill();
      if (grouped) values.sort(byBucketThenDimensions(plan.dimensions));
      for (const value of values) {
        yield {
          kpi: kpi.code,
          bucket: value.at,
          dimensions: dimensionsOf(plan.dimensions, value),
          value: value.value,
        };
      }
      const doneBuckets = Math.ceil((chunk.to - plan.from) / plan.interval);
      kpiRows += values.length;
      rows += values.length;
      const kpiEstimate = grouped ? Math.round((kpiRows / doneBuckets) * plan.buckets) : plan.buckets;
      const work = index * plan.buckets + doneBuckets;
      await onProgress?.({
        kpi: kpi.code,
        kpiRows,
        kpiEstimate,
        rows,
        estimate: Math.max(rows, Math.round((rows / work) * totalWork)),
        fraction: work / totalWork,
      });
    }
  }
}

/** Buckets of the next grouped chunk: about ROWS_PER_CHUNK rows at this density, growing at most 4-fold. */
function nextChunkBuckets(current: number, rowsPerBucket: number): number {
  const fitting = rowsPerBucket > 0 ? Math.floor(ROWS_PER_CHUNK / rowsPerBucket) : MAX_BUCKETS_PER_CHUNK;
  return Math.max(1, Math.min(MAX_BUCKETS_PER_CHUNK, current * 4, fitting));
}

/** Checks the config against the tenant's KPI definitions; throws ReportConfigError naming what is wrong. */
function planReport(config: ReportConfig, definitions: Map<string, KpiDefinition>): ReportPlan {
  if (!config.metrics.length)
    throw new ReportConfigError('the report lists no KPIs (config.metrics is empty)');
  const kpis = config.metrics.map((code) => {
    const kpi = definitions.get(code);
    if (!kpi) throw new ReportConfigError(`KPI "${code}" does not exist (any more)`);
    return kpi;
  });
  const label = config.timeRange.interval ?? DEFAULT_INTERVAL;
  const interval = intervalMs(label);
  if (interval === undefined) {
    throw new ReportConfigError(
      `timeRange.interval: expected 1m to 1d such as 5m, 1h or 1d, but got "${label}"`,
    );
  }
  const start = Date.parse(config.timeRange.start);
  const to = Date.parse(config.timeRange.end);
  if (Number.isNaN(start) || Number.isNaN(to) || !(start < to)) {
    throw new ReportConfigError(
      `timeRange: expected a start before the end, but got ${config.timeRange.start} to ${config.timeRange.end}`,
    );
  }
  // Buckets are aligned to the Unix epoch, as the calculator aligns them.
  const from = Math.floor(start / interval) * interval;
  // Every KPI is grouped and filtered alike, so each must have every dimension named (as at creation:
  // a KPI redefined since then may have lost one). A formula has no dimensions.
  const dimensionsOfKpi = (kpi: KpiDefinition) => (kpi.aggregation === 'FORMULA' ? [] : kpi.dimensions);
  const requireDimension = (what: string, dimension: string) => {
    for (const kpi of kpis) {
      if (!dimensionsOfKpi(kpi).includes(dimension)) {
        const has = dimensionsOfKpi(kpi).join(', ') || 'none';
        throw new ReportConfigError(
          `${what} "${dimension}" is not a dimension of KPI "${kpi.code}" (its dimensions: ${has})`,
        );
      }
    }
  };
  const dimensions = reportDimensions(config);
  for (const dimension of dimensions) requireDimension('dimension', dimension);
  const filter: Record<string, string | null> = {};
  for (const { field, operator, value } of config.filters) {
    if (operator !== 'eq') {
      throw new ReportConfigError(
        `filter on "${field}": only operator "eq" is supported, but got "${operator}"`,
      );
    }
    requireDimension('filter field', field);
    // Rollups hold a dimension's value as the string, or the JSON of a number or boolean.
    filter[field] =
      value === null || value === undefined
        ? null
        : typeof value === 'string'
          ? value
          : JSON.stringify(value);
  }
  const buckets = Math.ceil((to - from) / interval);
  return { kpis, dimensions, filter, from, to, interval, buckets };
}

function dimensionsOf(dimensions: string[], value: ComputedValue): Record<string, string | null> {
  return Object.fromEntries(dimensions.map((d) => [d, value.dimensions?.[d] ?? null]));
}

/** Orders grouped values by bucket, then by each dimension's value in the report's order (null last). */
function byBucketThenDimensions(dimensions: string[]) {
  return (a: ComputedValue, b: ComputedValue): number => {
    const byTime = a.at.getTime() - b.at.getTime();
    if (byTime) return byTime;
    for (const d of dimensions) {
      const x = a.dimensions?.[d] ?? null;
      const y = b.dimensions?.[d] ?? null;
      if (x === y) continue;
      if (x === null) return 1;
      if (y === null) return -1;
      return x < y ? -1 : 1;
    }
    return 0;
  };
}
