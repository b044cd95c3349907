// What the metrics subgraph's resolvers read once per request: the tenant's KPI definitions, whether a KPI
// exists, and the current values of every KPI the request asks for (one transaction, one query per window).
import DataLoader from 'dataloader';
import { withTenantRead, withTenantReadFrom, type TenantClient } from '../../db/pool.ts';
import { perRequest } from '../../lib/perRequest.ts';
import type { PlatformDeps, SubgraphContext } from '../../lib/subgraphServer.ts';
import { lastSequence } from '../../streams/connection.ts';
import { Stream, subjects } from '../../streams/subjects.ts';
import { currentRange } from './calculator.ts';
import { KpiCalculator } from './kpiValues.ts';
import { DEFINITIONS_SQL, definitionsByCode, type KpiDefinition } from './store.ts';

type Context = SubgraphContext<PlatformDeps>;

/**
 * Where a read goes: the primary, or the read replica (DATABASE_READ_URL; the primary without one) for
 * reads that tolerate a little lag, such as series. A value shown beside a KPI just defined or events
 * just ingested reads the primary.
 */
export type ReadSource = 'primary' | 'replica';

// The definitions of the caller's tenant, read once per request and source however many KPIs it
// resolves, in the first round trip of the transaction that needs them first. Kept per source: a
// replica's definitions may lag, and a KPI defined a moment ago must not go missing from the primary's.
const definitionsByRequest: Record<ReadSource, WeakMap<Context, Promise<Map<string, KpiDefinition>>>> = {
  primary: new WeakMap(),
  replica: new WeakMap(),
};

/**
 * Runs fn in a read transaction of the caller's tenant with the tenant's definitions: the request's, if
 * it has read them already from this source, or else read with the transaction's BEGIN (one round trip
 * for both).
 */
export function readWithDefinitions<T>(
  context: Context,
  fn: (client: TenantClient, definitions: Map<string, KpiDefinition>) => Promise<T>,
  source: ReadSource = 'primary',
): Promise<T> {
  const { principal } = context;
  const pool = source === 'replica' ? context.readPool : context.pool;
  const byRequest = definitionsByRequest[source];
  const known = byRequest.get(context);
  if (known) {
    return known.then((definitions) =>
      withTenantRead(pool, principal.tenant, (client) => fn(client, definitions)),
    );
  }
  const definitions = Promise.withResolvers<Map<string, KpiDefinition>>();
  definitions.promise.catch(() => undefined); // a failure is the caller's, through the transaction
  byRequest.set(context, definitions.promise);
  return withTenantReadFrom<KpiDefinition, T>(pool, principal.tenant, DEFINITIONS_SQL, (client, rows) => {
    const byCode = definitionsByCode(rows);
    definitions.resolve(byCode);
    return fn(client, byCode);
  }).catch((error: unknown) => {
    definitions.reject(error);
    byRequest.delete(context);
    throw error;
  });
}

/** The tenant's definitions alone (one round trip when the request has not read them yet). */
function definitionsOf(context: Context): Promise<Map<string, KpiDefinition>> {
  return (
    definitionsByRequest.primary.get(context) ??
    readWithDefinitions(context, (_, definitions) => Promise.resolve(definitions))
  );
}

/**
 * Runs fn where lag is tolerated: on the read replica with its definitions, unless one of `codes` is a KPI
 * the replica does not know yet (defined a moment ago, checked against the primary's definitions only
 * then), in which case on the primary. Without a replica, on the primary, sharing its definitions.
 */
export async function readLagTolerant<T>(
  context: Context,
  codes: readonly string[],
  fn: (client: TenantClient, definitions: Map<string, KpiDefinition>) => Promise<T>,
): Promise<T> {
  if (!context.readPool.replica) return readWithDefinitions(context, fn);
  const onReplica = await readWithDefinitions(
    context,
    async (client, definitions) => {
      const unknown = codes.filter((code) => !definitions.has(code));
      if (unknown.length) {
        const current = await definitionsOf(context);
        if (unknown.some((code) => current.has(code))) return undefined;
      }
      return { value: await fn(client, definitions) };
    },
    'replica',
  );
  return onReplica ? onReplica.value : readWithDefinitions(context, fn);
}

// KPIs are never deleted, so a code once seen stays a KPI of its tenant: kpi(code) answers from here
// without a query (bounded; cleared when full).
const knownKpis = new Set<string>();
const KNOWN_KPIS_AT_MOST = 100_000;
export async function kpiExists(context: Context, code: string): Promise<boolean> {
  const key = `${context.principal.tenant}\u0000${code}`;
  if (knownKpis.has(key)) return true;
  const exists = (await definitionsOf(context)).has(code);
  if (exists) {
    if (knownKpis.size >= KNOWN_KPIS_AT_MOST) knownKpis.clear();
    knownKpis.add(key);
  }
  return exists;
}

/** One KPI's current value asked for by a request, and whether with its cursor. */
export interface CurrentKey {
  code: string;
  dims: Record<string, unknown>;
  cursor: boolean;
}

// One loader per request: the current values of all the KPIs it asks for come from one transaction, and
// those over the same window from one query (KpiCalculator batches their totals).
export const currentValues = perRequest(
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
