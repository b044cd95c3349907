import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import { intervalMs } from '../../lib/durations.ts';
import { appError } from '../../lib/errors.ts';
import { scalars } from '../../lib/scalars.ts';
import type { PlatformDeps, SubgraphContext } from '../../lib/subgraphServer.ts';
import { encodeCursor } from '../../streams/cursor.ts';
import { ingestEvents } from './ingest.ts';
import { KpiCalculator, type ComputedValue } from './kpiValues.ts';
import { metricOf } from './metricShape.ts';
import { currentValues, kpiExists, readLagTolerant } from './requestReads.ts';
import { eventStore } from './store.ts';

type Context = SubgraphContext<PlatformDeps>;

interface TimeRangeInput {
  start: Date;
  end: Date;
  interval?: string | null;
}

const MAX_BUCKETS = 10_000;
const DEFAULT_INTERVAL = '1h';

function checkRange(range: TimeRangeInput): { from: Date; to: Date; interval: number; label: string } {
  const label = range.interval ?? DEFAULT_INTERVAL;
  const interval = intervalMs(label);
  if (interval === undefined) {
    throw appError(
      'BAD_USER_INPUT',
      `timeRange.interval: expected 1m to 1d such as 5m, 1h or 1d, but got "${label}"`,
    );
  }
  if (!(range.start < range.end)) throw appError('BAD_USER_INPUT', 'timeRange: expected start before end');
  const buckets = (range.end.getTime() - range.start.getTime()) / interval;
  if (buckets > MAX_BUCKETS) {
    throw appError(
      'BAD_USER_INPUT',
      `timeRange: ${Math.ceil(buckets)} buckets of ${label}; at most ${MAX_BUCKETS}`,
    );
  }
  return { from: range.start, to: range.end, interval, label };
}

function dimensionFilter(dimensions: unknown): Record<string, unknown> {
  if (dimensions === null || dimensions === undefined) return {};
  if (typeof dimensions !== 'object' || Array.isArray(dimensions)) {
    throw appError('BAD_USER_INPUT', 'dimensions: expected an object such as { "country": "DE" }');
  }
  return Object.fromEntries(Object.entries(dimensions).map(([k, v]) => [k, v === null ? null : String(v)]));
}

/** Whether the field being resolved selects `name`, through fragments too (@skip and @include not read). */
function selectsField(info: GraphQLResolveInfo, name: string): boolean {
  const within = (set: SelectionSetNode | undefined): boolean =>
    !!set?.selections.some((selection) =>
      selection.kind === Kind.FIELD
        ? selection.name.value === name
        : within(
            selection.kind === Kind.INLINE_FRAGMENT
              ? selection.selectionSet
              : info.fragments[selection.name.value]?.selectionSet,
          ),
    );
  return info.fieldNodes.some((node) => within(node.selectionSet));
}

// The cursor is left out where the query does not select it (a non-null field, never resolved then).
const kpiValue = (code: string, value: ComputedValue, cursor: string | undefined) => ({
  kpi: { code },
  value: value.value,
  at: value.at,
  dimensions: value.dimensions,
  cursor,
});

/** Resolvers of the metrics subgraph. */
export const resolvers = {
  ...scalars,
  Query: {
    // The same answer as metadata's: a reference to the tenant's KPI of that code, or null.
    kpi: async (_: unknown, args: { code: string }, context: Context) =>
      (await kpiExists(context, args.code)) ? { code: args.code } : null,
    metrics: async (
      _: unknown,
      args: { names: string[]; timeRange: TimeRangeInput; dimensions?: string[] | null },
      context: Context,
    ) => {
      const range = checkRange(args.timeRange);
      const groupBy = args.dimensions ?? [];
      return readLagTolerant(context, args.names, async (client, definitions) => {
        const calculator = new KpiCalculator(client, definitions);
        const metrics = [];
        for (const name of args.names) {
          const kpi = definitions.get(name);
          const values: ComputedValue[] = kpi
            ? await calculator.series(name, range, {}, kpi.aggregation === 'FORMULA' ? [] : groupBy)
            : (await eventStore.eventCounts(client, { name, ...range, intervalMs: range.interval })).map(
                (c) => ({
                  at: c.at,
                  value: c.count,
                  dimensions: null,
                }),
              );
          for (const value of values) {
            if (value.value === null) continue;
            metrics.push(
              metricOf({
                name,
                aggregation: kpi?.aggregation ?? 'COUNT',
                unit: kpi?.unit ?? null,
                interval: range.label,
                value: value.value,
                at: value.at,
                dimensions: value.dimensions,
              }),
            );
          }
        }
        return metrics;
      });
    },
  },
  Mutation: {
    ingestEvents: (_: unknown, args: { events: unknown[] }, context: Context) =>
      ingestEvents(context, args.events),
  },
  Subscription: {
    kpiUpdated: {
      subscribe: () => {
        throw appError(
          'NOT_IMPLEMENTED',
          'kpiUpdated is served by the gateway from the KPI stream: subscribe through the gateway',
        );
      },
    },
    metricUpdates: {
      subscribe: () => {
        throw appError(
          'NOT_IMPLEMENTED',
          'metricUpdates is served by the gateway from the KPI stream: subscribe through the gateway',
        );
      },
    },
  },
  Kpi: {
    current: async (
      kpi: { code: string },
      args: { dimensions?: unknown },
      context: Context,
      info: GraphQLResolveInfo,
    ) => {
      const dims = dimensionFilter(args.dimensions);
      const { value, seq } = await currentValues(context).load({
        code: kpi.code,
        dims,
        cursor: selectsField(info, 'cursor'),
      });
      if (value === undefined) return null;
      const dimensions = Object.keys(dims).length ? (dims as Record<string, string>) : null;
      return kpiValue(
        kpi.code,
        { at: new Date(), value, dimensions },
        seq === undefined ? undefined : encodeCursor(seq),
      );
    },
    series: async (
      kpi: { code: string },
      args: { timeRange: TimeRangeInput; dimensions?: unknown },
      context: Context,
    ) => {
      const range = checkRange(args.timeRange);
      const dims = dimensionFilter(args.dimensions);
      const values = await readLagTolerant(context, [kpi.code], (client, definitions) =>
        new KpiCalculator(client, definitions).series(kpi.code, range, dims),
      );
      return values.map((value) => kpiValue(kpi.code, value, `s:${value.at.getTime()}`));
    },
  },
};
