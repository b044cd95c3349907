import DataLoader from 'dataloader';
import { withTenant, withTenantRead } from '../../db/pool.ts';
import { appError } from '../../lib/errors.ts';
import { formulaReferences, parseFormula } from '../../lib/formula.ts';
import type { PlatformDeps, SubgraphContext } from '../../lib/subgraphServer.ts';
import { perRequest } from '../../lib/perRequest.ts';
import { envelope } from '../../streams/envelope.ts';
import { publishAll } from '../../streams/publisher.ts';
import { subjects } from '../../streams/subjects.ts';
import { kpiStore, type StoredKpi } from './store.ts';
import { assertNoIssues, checkFormula, normaliseKpiInput, type KpiInput } from './validate.ts';

type Context = SubgraphContext<PlatformDeps>;

// One loader per request: `_entities` for many KPIs becomes one query.
const kpiLoader = perRequest(
  (context: Context) =>
    new DataLoader<string, StoredKpi | null>(async (codes) => {
      const rows = await withTenantRead(context.pool, context.principal.tenant, (c) =>
        kpiStore.getMany(c, codes),
      );
      const byCode = new Map(rows.map((row) => [row.code, row]));
      return codes.map((code) => byCode.get(code) ?? null);
    }),
);

function references(formula: string | null): string[] {
  if (!formula) return [];
  try {
    return formulaReferences(parseFormula(formula));
  } catch {
    return []; // stored formulas were validated; a grammar change must not block other definitions
  }
}

/** Resolvers of the metadata subgraph. */
export const resolvers = {
  Query: {
    kpis: (_: unknown, __: unknown, context: Context) => {
      const { tenant } = context.principal;
      return withTenantRead(context.pool, tenant, (client) => kpiStore.list(client));
    },
    kpi: (_: unknown, args: { code: string }, context: Context) => kpiLoader(context).load(args.code),
  },
  Mutation: {
    defineKpi: async (_: unknown, args: { input: KpiInput }, context: Context) => {
      const { tenant } = context.principal;
      const { definition, issues } = normaliseKpiInput(args.input);
      assertNoIssues(issues);
      const { kpi, changed } = await withTenant(context.pool, tenant, async (client) => {
        await kpiStore.lockTenantDefinitions(client, tenant);
        const existing = await kpiStore.formulas(client);
        const formulas = new Map(existing.map((row) => [row.code, references(row.formula)]));
        assertNoIssues(checkFormula(definition, new Set(formulas.keys()), formulas));
        return kpiStore.upsert(client, tenant, definition);
      });
      // Published after commit with a message id per version: a retried call publishes the same message.
      const messageId = `kpi:${tenant}:${kpi.code}:v${kpi.version}`;
      try {
        await publishAll(context.broker.nc, [
          {
            subject: subjects.metadataChanged(tenant),
            body: envelope({
              eventType: 'kpi.defined',
              source: 'metadata',
              tenant,
              eventId: messageId,
              payload: kpi,
            }),
            msgID: messageId,
          },
        ]);
      } catch (error) {
        context.logger.error(
          { err: error, code: kpi.code },
          'definition stored but change notice not published',
        );
        throw appError(
          'SERVICE_UNAVAILABLE',
          `KPI ${kpi.code} was stored but its change could not be announced; retrying defineKpi is safe`,
        );
      }
      context.logger.info({ code: kpi.code, version: kpi.version, changed }, 'kpi defined');
      return kpi;
    },
  },
  Kpi: {
    __resolveReference: (reference: { code: string }, context: Context) =>
      kpiLoader(context).load(reference.code),
  },
};
