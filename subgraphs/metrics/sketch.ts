/**
 * A quantile sketch in the manner of DDSketch: values fall into logarithmic buckets, so any quantile
 * is estimated within RELATIVE_ACCURACY of the true value, and two sketches merge by adding counts.
 * It is stored as a JSON object of bucket -> count so that Postgres merges rollups in the upsert
 * itself (sketch_merge in db/migrations), which a library sketch with a binary encoding could not.
 */

/** Every quantile estimate lies within 1% of the value of that rank. */
export const RELATIVE_ACCURACY = 0.01;
const GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
const LOG_GAMMA = Math.log(GAMMA);
// Values this close to zero count as zero (below any unit a KPI uses).
const MIN_MAGNITUDE = 1e-9;

/** Bucket key -> count. Keys: "z" for zero, "p<k>" for positive and "n<k>" for negative values. */
export type Sketch = Record<string, number>;

function keyOf(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude < MIN_MAGNITUDE) return 'z';
  const index = Math.ceil(Math.log(magnitude) / LOG_GAMMA);
  return `${value > 0 ? 'p' : 'n'}${index}`;
}

function valueOf(key: string): number {
  if (key === 'z') return 0;
  const index = Number(key.slice(1));
  const magnitude = (2 * GAMMA ** index) / (GAMMA + 1);
  return key.startsWith('n') ? -magnitude : magnitude;
}

/** Adds one value to a sketch (in place) and returns it. */
export function addToSketch(sketch: Sketch, value: number): Sketch {
  const key = keyOf(value);
  sketch[key] = (sketch[key] ?? 0) + 1;
  return sketch;
}

/** Merges sketches into a new one. */
export function mergeSketches(sketches: Iterable<Sketch | null | undefined>): Sketch {
  const merged: Sketch = {};
  for (const sketch of sketches) {
    if (!sketch) continue;
    for (const [key, count] of Object.entries(sketch)) merged[key] = (merged[key] ?? 0) + count;
  }
  return merged;
}

/** The value at quantile q (0..1) by the nearest-rank method, or null for an empty sketch. */
export function sketchQuantile(sketch: Sketch, q: number): number | null {
  const entries = Object.entries(sketch)
    .filter(([, count]) => count > 0)
    .map(([key, count]) => [valueOf(key), count] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((sum, [, count]) => sum + count, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [value, count] of entries) {
    seen += count;
    if (seen >= rank) return value;
  }
  return entries.at(-1)![0];
}
