import DataLoader from 'dataloader';
import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import { withTenantRead, withTenantReadFrom, type TenantClient } from '../../db/pool.ts';
import { intervalMs } from '../../lib/durations.ts';
import { appError } from '../../lib/errors.ts';
import { perRequest } from '../../lib/perRequest.ts';
import { scalars } from '../../lib/scalars.ts';
import type { PlatformDeps, SubgraphContext } from '../../lib/subgraphServer.ts';
import { lastSequence } from '../../streams/connection.ts';
import { encodeCursor } from '../../streams/cursor.ts';
import { metricOf } from './metricShape.ts';
import { Stream, subjects } from '../../streams/subjects.ts';
import { currentRange } from './calculator.ts';
import { ingestEvents } from './ingest.ts';
import { KpiCalculator, type ComputedValue } from './kpiValues.ts';
import { DEFINITIONS_SQL, definitionsByCode, eventStore, type KpiDefinition } from './store.ts';

type Context = SubgraphContext<PlatformDeps>;

interface TimeRangeInput {
  start: Date;
  end: Date;
  interval?: string | null;
}

const MAX_BUCKETS = 10_000;
const DEFAULT_INTERVAL = '1h';

// The definitions of the caller's tenant, read once per request however many KPIs it resolves, in the
// first round trip of the transaction that needs them first.
const definitionsByRequest = new WeakMap<Context, Promise<Map<string, KpiDefinition>>>();

/**
 * Runs fn in a read transaction of the caller's tenant with the tenant's definitions: the request's, if
 * it has read them already, or else read with the transaction's BEGIN (one round trip for both).
 */
function readWithDefinitions<T>(
  context: Context,
  fn: (client: TenantClient, definitions: Map<string, KpiDefinition>) => Promise<T>,
): Promise<T> {
  const { pool, principal } = context;
  const known = definitionsByRequest.get(context);
  if (known) {
    return known.then((definitions) =>
      withTenantRead(pool, principal.tenant, (client) => fn(client, definitions)),
    );
  }
  const definitions = Promise.withResolvers<Map<string, KpiDefinition>>();
  definitions.promise.catch(() => undefined); // a failure is the caller's, through the transaction
  definitionsByRequest.set(context, definitions.promise);
  return withTenantReadFrom<KpiDefinition, T>(pool, principal.tenant, DEFINITIONS_SQL, (client, rows) => {
    const byCode = definitionsByCode(rows);
    definitions.resolve(byCode);
    return fn(client, byCode);
  }).catch((error: unknown) => {
    definitions.reject(error);
    definitionsByRequest.delete(context);
    throw error;
  });
}

/** The tenant's definitions alone (one round trip when the request has not read them yet). */
function definitionsOf(context: Context): Promise<Map<string, KpiDefinition>> {
  return (
    definitionsByRequest.get(context) ??
    readWithDefinitions(context, (_, definitions) => Promise.resolve(definitions))
  );
}

// KPIs are never deleted, so a code once seen stays a KPI of its tenant: kpi(code) answers from here
// without a query (bounded; cleared when full).
const knownKpis = new Set<string>();
const KNOWN_KPIS_AT_MOST = 100_000;
async function kpiExists(context: Context, code: string): Promise<boolean> {
  const key = `${context.principal.tenant}\u0000${code}`;
  if (knownKpis.has(key)) return true;
  const exists = (await definitionsOf(context)).has(code);
  if (exists) {
    if (knownKpis.size >= KNOWN_KPIS_AT_MOST) knownKpis.clear();
    knownKpis.add(key);
  }
  return exists;
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

/** One KPI's current value asked for by a request, and whether with its cursor. */
interface CurrentKey {
  code: string;
  dims: Record<string, unknown>;
  cursor: boolean;
}

// One loader per request: the current values of all the KPIs it asks for come from one transaction, and
// those over the same window from one query (KpiCalculator batches their totals).
const currentValues = perRequest(
  (context: Context) =>
    new DataLoader<CurrentKey, { value?: number | null; seq?: number }, string>(
      async (keys) => {
        const { tenant } = context.principal;
        // A cursor is the KPI's position in the KPI stream, read before the value, so that every value
        // computed after this answer is published after it: subscribing after it misses nothing. Read
        // only when the query selects it (the dashboard's does not).
        const seqs = await Promise.all(
          keys.map(({ code, cursor }) =>
            cursor
              ? lastSequence(context.broker.nc, Stream.KPI, subjects.kpi(tenant, code))
              : Promise.resolve(undefined),
          ),
        );
        const values = await readWithDefinitions(context, (client, definitions) => {
          const calculator = new KpiCalculator(client, definitions);
          const now = Date.now();
          return Promise.all(
            keys.map(({ code, dims }) => {
              const definition = definitions.get(code);
              if (!definition) return Promise.resolve(undefined);
              const { from, to } = currentRange(definition.window, now);
              return calculator.valueOver(code, from, to, dims);
            }),
          );
        });
        return keys.map((_, i) => ({ value: values[i], seq: seqs[i] }));
      },
      { cacheKeyFn: ({ code, dims, cursor }) => `${code}\u0000${JSON.stringify(dims)}\u0000${cursor}` },
    ),
);

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
      return readWithDefinitions(context, async (client, definitions) => {
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
      const values = await readWithDefinitions(context, (client, definitions) =>
        new KpiCalculator(client, definitions).series(kpi.code, range, dims),
      );
      return values.map((value) => kpiValue(kpi.code, value, `s:${value.at.getTime()}`));
    },
  },
};
