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

// The definitions of the caller's tenant, read once per request however many KPIs it resolves, in the
// first round trip of the transaction that needs them first.
const definitionsByRequest = new WeakMap<Context, Promise<Map<string, KpiDefinition>>>();

/**
 * Runs fn in a read transaction of the caller's tenant with the tenant's definitions: the request's, if
 * it has read them already, or else read with the transaction's BEGIN (one round trip for both).
 */
export function readWithDefinitions<T>(
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
