import { withTenantRead, type TenantClient } from '../../db/pool.ts';
import { intervalMs } from '../../lib/durations.ts';
import { appError } from '../../lib/errors.ts';
import { scalars } from '../../lib/scalars.ts';
import type { PlatformDeps, SubgraphContext } from '../../lib/subgraphServer.ts';
import { lastSequence } from '../../streams/connection.ts';
import { encodeCursor } from '../../streams/cursor.ts';
import { metricOf } from './metricShape.ts';
import { Stream, subjects } from '../../streams/subjects.ts';
import { currentRange } from './calculator.ts';
import { ingestEvents } from './ingest.ts';
import { KpiCalculator, type ComputedValue } from './kpiValues.ts';
import { eventStore, type KpiDefinition } from './store.ts';

type Context = SubgraphContext<PlatformDeps>;

interface TimeRangeInput {
  start: Date;
  end: Date;
  interval?: string | null;
}

const MAX_BUCKETS = 10_000;
const DEFAULT_INTERVAL = '1h';

// The definitions of the caller's tenant, read once per request however many KPIs it resolves: in the
// caller's transaction when it has one open (one round trip, not a transaction of their own).
const definitionsByRequest = new WeakMap<Context, Promise<Map<string, KpiDefinition>>>();
function definitionsOf(context: Context, client?: TenantClient): Promise<Map<string, KpiDefinition>> {
  let definitions = definitionsByRequest.get(context);
  if (!definitions) {
    definitions = client
      ? eventStore.definitions(client)
      : withTenantRead(context.pool, context.principal.tenant, (c) => eventStore.definitions(c));
    definitionsByRequest.set(context, definitions);
  }
  return definitions;
}

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

const kpiValue = (code: string, value: ComputedValue, cursor: string) => ({
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
      (await definitionsOf(context)).has(args.code) ? { code: args.code } : null,
    metrics: async (
      _: unknown,
      args: { names: string[]; timeRange: TimeRangeInput; dimensions?: string[] | null },
      context: Context,
    ) => {
      const { tenant } = context.principal;
      const range = checkRange(args.timeRange);
      const definitions = await definitionsOf(context);
      const groupBy = args.dimensions ?? [];
      return withTenantRead(context.pool, tenant, async (client) => {
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
          "kpiUpdated is served by the gateway's subscription engine, not built yet",
        );
      },
    },
    metricUpdates: {
      subscribe: () => {
        throw appError(
          'NOT_IMPLEMENTED',
          "metricUpdates is served by the gateway's subscription engine, not built yet",
        );
      },
    },
  },
  Kpi: {
    current: async (kpi: { code: string }, args: { dimensions?: unknown }, context: Context) => {
      const { tenant } = context.principal;
      const dims = dimensionFilter(args.dimensions);
      const value = await withTenantRead(context.pool, tenant, async (client) => {
        const definitions = await definitionsOf(context, client);
        const definition = definitions.get(kpi.code);
        if (!definition) return undefined;
        const { from, to } = currentRange(definition.window);
        return new KpiCalculator(client, definitions).valueOver(kpi.code, from, to, dims);
      });
      if (value === undefined) return null;
      // The cursor is this KPI's position in the KPI stream: subscribing after it misses nothing.
      const seq = await lastSequence(context.broker.nc, Stream.KPI, subjects.kpi(tenant, kpi.code));
      const dimensions = Object.keys(dims).length ? (dims as Record<string, string>) : null;
      return kpiValue(kpi.code, { at: new Date(), value, dimensions }, encodeCursor(seq));
    },
    series: async (
      kpi: { code: string },
      args: { timeRange: TimeRangeInput; dimensions?: unknown },
      context: Context,
    ) => {
      const { tenant } = context.principal;
      const range = checkRange(args.timeRange);
      const dims = dimensionFilter(args.dimensions);
      const values = await withTenantRead(context.pool, tenant, async (client) =>
        new KpiCalculator(client, await definitionsOf(context, client)).series(kpi.code, range, dims),
      );
      return values.map((value) => kpiValue(kpi.code, value, `s:${value.at.getTime()}`));
    },
  },
};
