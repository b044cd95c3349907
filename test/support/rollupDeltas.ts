// Rollup rows for tests over real Postgres: what the writer adds up from some values of one bucket.
import type { RollupDelta } from '../../subgraphs/metrics/rollups.ts';
import { addToSketch, type Sketch } from '../../subgraphs/metrics/sketch.ts';

/** The quantile sketch of these values. */
export const sketchOf = (values: number[]): Sketch =>
  values.reduce<Sketch>((sketch, value) => addToSketch(sketch, value), {});

/** The 1h rollup delta of a KPI's values in one bucket and one combination of dimension values. */
export function hourlyDelta(
  kpiCode: string,
  bucket: Date,
  dims: Record<string, string>,
  values: number[],
): RollupDelta {
  return {
    kpiCode,
    resolution: '1h',
    bucket,
    dims,
    count: values.length,
    sum: values.reduce((a, b) => a + b, 0),
    min: Math.min(...values),
    max: Math.max(...values),
    sketch: sketchOf(values),
  };
}
