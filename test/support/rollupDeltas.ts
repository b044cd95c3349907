// Rollup rows for tests over real Postgres, made as the writer makes them (computeRollups) from events.
import { computeRollups, type RollupDelta, type RollupKpi } from '../../subgraphs/metrics/rollups.ts';
import { addToSketch, type Sketch } from '../../subgraphs/metrics/sketch.ts';

const HOUR = 3_600_000;

/** The quantile sketch of these values. */
export const sketchOf = (values: number[]): Sketch =>
  values.reduce<Sketch>((sketch, value) => addToSketch(sketch, value), {});

/**
 * The rollups (1m, 1h, 1d) of a KPI whose value field is `amount` and dimension `country`, from events
 * in consecutive hours from `start`: per hour, each country's amounts.
 */
export function rollupsOf(
  kpi: RollupKpi,
  start: number,
  hours: ReadonlyArray<ReadonlyArray<readonly [string, readonly number[]]>>,
): RollupDelta[] {
  const events = hours.flatMap((countries, hour) =>
    countries.flatMap(([country, amounts]) =>
      amounts.map((amount, i) => ({
        id: `${kpi.code}-${hour}-${country}-${i}`,
        name: kpi.eventName!,
        timestamp: new Date(start + hour * HOUR + i * 1_000),
        attributes: { amount, country },
      })),
    ),
  );
  return computeRollups(events, [kpi]).rollups;
}
