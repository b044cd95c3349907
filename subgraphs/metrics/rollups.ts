import { addToSketch, type Sketch } from './sketch.ts';

/** Rollup resolutions, finest first; each is derived from the same events in the same transaction. */
export const RESOLUTIONS = [
  { name: '1m', ms: 60_000 },
  { name: '1h', ms: 3_600_000 },
  { name: '1d', ms: 86_400_000 },
] as const;
export type Resolution = (typeof RESOLUTIONS)[number]['name'];

/** What the rollups need to know of a KPI. */
export interface RollupKpi {
  code: string;
  eventName: string | null;
  aggregation: string;
  valueField: string | null;
  dimensions: string[];
}

/** An event as the writer stores it. */
export interface StoredEvent {
  id: string;
  name: string;
  timestamp: Date;
  attributes: Record<string, unknown>;
}

/** The change one batch makes to one rollup row. */
export interface RollupDelta {
  kpiCode: string;
  resolution: Resolution;
  bucket: Date;
  /** The KPI's dimension values, every declared dimension present (null when the event lacks it). */
  dims: Record<string, string | null>;
  count: number;
  sum: number;
  min: number | null;
  max: number | null;
  sketch: Sketch | null;
}

/** One distinct value seen in a minute bucket, for DISTINCT_COUNT. */
export interface DistinctValue {
  kpiCode: string;
  bucket: Date;
  dims: Record<string, string | null>;
  value: string;
}

const QUANTILES = new Set(['P50', 'P95', 'P99']);

/** Reads an attribute path such as "amount" or "order.total". */
export function attributeAt(attributes: Record<string, unknown>, path: string): unknown {
  let current: unknown = attributes;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/** A number from an attribute (numbers, or numeric strings such as "42.50"); null if it is not one. */
export function numericValue(value: unknown): number | null {
  const number =
    typeof value === 'number' ? value : typeof value === 'string' && value.trim() ? Number(value) : NaN;
  return Number.isFinite(number) ? number : null;
}

function dimensionValues(kpi: RollupKpi, attributes: Record<string, unknown>): Record<string, string | null> {
  const dims: Record<string, string | null> = {};
  for (const name of kpi.dimensions) {
    const value = attributeAt(attributes, name);
    dims[name] =
      value === undefined || value === null
        ? null
        : typeof value === 'string'
          ? value
          : JSON.stringify(value);
  }
  return dims;
}

const floorTo = (time: number, ms: number) => new Date(Math.floor(time / ms) * ms);

// Float sums of decimal amounts carry noise (0.1 + 0.2); 15 significant digits drop it before Postgres adds it up.
const clean = (value: number) => Number(value.toPrecision(15));

/**
 * Turns new events into rollup deltas for every KPI computed from them: count, sum, min, max and a
 * quantile sketch per KPI x resolution x bucket x dimension values, plus distinct values. An event
 * whose value field is missing or not numeric does not count towards that KPI (COUNT needs no value).
 */
export function computeRollups(
  events: readonly StoredEvent[],
  kpis: readonly RollupKpi[],
): { rollups: RollupDelta[]; distinct: DistinctValue[] } {
  const byEvent = new Map<string, RollupKpi[]>();
  for (const kpi of kpis) {
    if (!kpi.eventName || kpi.aggregation === 'FORMULA') continue;
    byEvent.set(kpi.eventName, [...(byEvent.get(kpi.eventName) ?? []), kpi]);
  }
  const rows = new Map<string, RollupDelta>();
  const distinct = new Map<string, DistinctValue>();
  for (const event of events) {
    for (const kpi of byEvent.get(event.name) ?? []) {
      const raw = kpi.valueField ? attributeAt(event.attributes, kpi.valueField) : undefined;
      let value: number | null = null;
      if (kpi.aggregation === 'DISTINCT_COUNT') {
        if (raw === undefined || raw === null) continue;
      } else if (kpi.aggregation !== 'COUNT') {
        value = numericValue(raw);
        if (value === null) continue;
      }
      const dims = dimensionValues(kpi, event.attributes);
      const dimsKey = JSON.stringify(dims);
      const time = event.timestamp.getTime();
      for (const resolution of RESOLUTIONS) {
        const bucket = floorTo(time, resolution.ms);
        const key = `${kpi.code}|${resolution.name}|${bucket.getTime()}|${dimsKey}`;
        let row = rows.get(key);
        if (!row) {
          row = {
            kpiCode: kpi.code,
            resolution: resolution.name,
            bucket,
            dims,
            count: 0,
            sum: 0,
            min: null,
            max: null,
            sketch: null,
          };
          rows.set(key, row);
        }
        row.count += 1;
        if (value !== null) {
          row.sum += value;
          row.min = row.min === null ? value : Math.min(row.min, value);
          row.max = row.max === null ? value : Math.max(row.max, value);
          if (QUANTILES.has(kpi.aggregation)) row.sketch = addToSketch(row.sketch ?? {}, value);
        }
      }
      if (kpi.aggregation === 'DISTINCT_COUNT') {
        const bucket = floorTo(time, RESOLUTIONS[0].ms);
        const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
        distinct.set(`${kpi.code}|${bucket.getTime()}|${dimsKey}|${text}`, {
          kpiCode: kpi.code,
          bucket,
          dims,
          value: text,
        });
      }
    }
  }
  const rollups = [...rows.values()].map((row) => ({ ...row, sum: clean(row.sum) }));
  return { rollups, distinct: [...distinct.values()] };
}
