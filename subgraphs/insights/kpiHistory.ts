// A KPI's history in 5-minute buckets and its value over the judged window, read from rollups by the
// metrics subgraph's KPI calculator (the numbers `Kpi.series` serves). The detector judges a KPI on
// every value the calculator publishes, so the history is kept: the last hours are read again on each
// judgment (late events land there), all of it every quarter of an hour and when the KPI is redefined.
import type { TenantClient } from '../../db/pool.ts';
import { formulaReferences, parseFormula } from '../../lib/formula.ts';
import { KpiCalculator } from '../metrics/kpiValues.ts';
import type { KpiDefinition } from '../metrics/store.ts';
import { BUCKET_MS, type BucketSeries } from './baseline.ts';

/** How far back the detector learns: 4 weeks for the same time of week, a day more for the level. */
export const HISTORY_MS = 29 * 86_400_000;
// Read again on every judgment: late events and backfills mostly land in the last hours.
const RECENT_MS = 6 * 3_600_000;
// Read again in full this often.
const REFRESH_MS = 15 * 60_000;
// A KPI not judged for this long is forgotten.
const IDLE_MS = 60 * 60_000;

interface Cached {
  version: number;
  fetchedAt: number;
  usedAt: number;
  values: Map<number, number | null>;
}

/** Keeps the bucket histories of the KPIs a detector judges. */
export class KpiHistories {
  private readonly cache = new Map<string, Cached>();
  private evictedAt = 0;

  /** The complete buckets of the last HISTORY_MS before `now`, oldest first. */
  async series(
    client: TenantClient,
    tenant: string,
    kpi: KpiDefinition,
    calculator: KpiCalculator,
    now: number,
  ): Promise<BucketSeries> {
    const end = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const start = end - HISTORY_MS;
    const key = `${tenant}|${kpi.code}`;
    let cached = this.cache.get(key);
    if (!cached || cached.version !== kpi.version || now - cached.fetchedAt >= REFRESH_MS) {
      cached = { version: kpi.version, fetchedAt: now, usedAt: now, values: new Map() };
      await this.read(calculator, kpi.code, start, end, cached);
      this.cache.set(key, cached);
    } else {
      await this.read(calculator, kpi.code, Math.max(start, end - RECENT_MS), end, cached);
    }
    cached.usedAt = now;
    this.evictIdle(now);
    const values: Array<number | null> = [];
    for (let t = start; t < end; t += BUCKET_MS) values.push(cached.values.get(t) ?? null);
    return { start, values };
  }

  private async read(calculator: KpiCalculator, code: string, from: number, to: number, into: Cached) {
    if (from >= to) return;
    const points = await calculator.series(code, {
      from: new Date(from),
      to: new Date(to),
      interval: BUCKET_MS,
    });
    for (const point of points) into.values.set(point.at.getTime(), point.value);
    for (const time of into.values.keys()) if (time < to - HISTORY_MS) into.values.delete(time);
  }

  private evictIdle(now: number): void {
    if (now - this.evictedAt < REFRESH_MS) return;
    this.evictedAt = now;
    for (const [key, cached] of this.cache) if (now - cached.usedAt > IDLE_MS) this.cache.delete(key);
  }
}

/**
 * How many events a sum, level or formula rests on over [from, to): the KPI's own events, or for a
 * formula the fewest of its inputs'. Counts need no such check (Infinity).
 */
export async function eventsBehind(
  client: TenantClient,
  definitions: Map<string, KpiDefinition>,
  kpi: KpiDefinition,
  from: number,
  to: number,
): Promise<number> {
  if (kpi.aggregation === 'COUNT' || kpi.aggregation === 'DISTINCT_COUNT') return Infinity;
  const inputs =
    kpi.aggregation === 'FORMULA'
      ? formulaReferences(parseFormula(kpi.formula ?? '')).filter(
          (code) => definitions.has(code) && definitions.get(code)!.aggregation !== 'FORMULA',
        )
      : [kpi.code];
  if (!inputs.length) return Infinity;
  // The same rollups read as a COUNT: how many events each bucket holds.
  const counting = new KpiCalculator(
    client,
    new Map(inputs.map((code) => [code, { ...definitions.get(code)!, aggregation: 'COUNT' }])),
  );
  let fewest = Infinity;
  for (const code of inputs)
    fewest = Math.min(fewest, (await counting.valueOver(code, new Date(from), new Date(to))) ?? 0);
  return fewest;
}
