import DataLoader from 'dataloader';
import { withTenant, withTenantRead, type TenantClient } from '../../db/pool.ts';
import { appError } from '../../lib/errors.ts';
import { scalars } from '../../lib/scalars.ts';
import type { PlatformDeps, SubgraphContext } from '../../lib/subgraphServer.ts';
import { perRequest } from '../../lib/perRequest.ts';
import type { AlertCondition, Severity } from './detect.ts';
import { alertStore, insightStore, type AlertRuleRow, type InsightRow } from './store.ts';

type Context = SubgraphContext<PlatformDeps>;

const MAX_LIMIT = 100;

function checkLimit(limit: number | null | undefined): number {
  const value = limit ?? 10;
  if (!Number.isInteger(value) || value < 1 || value > MAX_LIMIT)
    throw appError('BAD_USER_INPUT', `limit: expected 1 to ${MAX_LIMIT}, but got ${value}`, {
      field: 'limit',
    });
  return value;
}

// Loaders per request: `Kpi.insights` and `Kpi.alerts` for many KPIs, and `_entities` for many
// insights, each become one query.
interface Loaders {
  insights: Map<number, DataLoader<string, InsightRow[]>>;
  alerts: DataLoader<string, AlertRuleRow[]>;
  byId: DataLoader<string, InsightRow | null>;
}
const loadersOf = perRequest((context: Context): Loaders => {
  const tenantScoped = <T>(fn: (client: TenantClient) => Promise<T>) =>
    withTenantRead(context.pool, context.principal.tenant, fn);
  return {
    insights: new Map(),
    alerts: new DataLoader(async (codes) => {
      const byKpi = await tenantScoped((client) => alertStore.ofKpis(client, codes));
      return codes.map((code) => byKpi.get(code) ?? []);
    }),
    byId: new DataLoader(async (ids) => {
      const rows = await tenantScoped((client) => insightStore.byIds(client, ids));
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
});

function kpiInsights(context: Context, code: string, limit: number): Promise<InsightRow[]> {
  const perLimit = loadersOf(context).insights;
  let loader = perLimit.get(limit);
  if (!loader) {
    loader = new DataLoader(async (codes) => {
      // Listings tolerate a little lag: the read replica, if there is one (an insight by id does not).
      const byKpi = await withTenantRead(context.readPool, context.principal.tenant, (client) =>
        insightStore.latestOfKpis(client, codes, limit),
      );
      return codes.map((c) => byKpi.get(c) ?? []);
    });
    perLimit.set(limit, loader);
  }
  return loader.load(code);
}

/** Resolvers of the insights subgraph. */
export const resolvers = {
  ...scalars,
  Query: {
    insights: (_: unknown, args: { context: string; limit?: number | null }, context: Context) => {
      const { tenant } = context.principal;
      const limit = checkLimit(args.limit);
      return withTenantRead(context.readPool, tenant, (client) =>
        insightStore.list(client, args.context, limit),
      );
    },
    alerts: (_: unknown, args: { kpi?: string | null }, context: Context) => {
      const { tenant } = context.principal;
      return withTenantRead(context.pool, tenant, (client) => alertStore.list(client, args.kpi ?? null));
    },
  },
  Mutation: {
    defineAlert: async (
      _: unknown,
      args: { kpi: string; condition: AlertCondition; value: number; severity?: Severity | null },
      context: Context,
    ) => {
      const { tenant } = context.principal;
      if (!Number.isFinite(args.value))
        throw appError('BAD_USER_INPUT', `value: expected a finite number, but got ${args.value}`, {
          field: 'value',
        });
      const rule = await withTenant(context.pool, tenant, async (client) => {
        if (!(await insightStore.kpiLabel(client, args.kpi)))
          throw appError('BAD_USER_INPUT', `kpi: expected the code of a defined KPI, but got "${args.kpi}"`, {
            field: 'kpi',
          });
        return alertStore.define(client, tenant, {
          kpiCode: args.kpi,
          condition: args.condition,
          value: args.value,
          severity: args.severity ?? 'WARNING',
        });
      });
      context.logger.info({ rule: rule.id, kpi: rule.kpiCode, condition: rule.condition }, 'alert defined');
      return rule;
    },
    deleteAlert: async (_: unknown, args: { id: string }, context: Context) => {
      const { tenant } = context.principal;
      return withTenant(context.pool, tenant, (client) => alertStore.remove(client, args.id));
    },
  },
  Subscription: {
    newInsights: {
      subscribe: () => {
        throw appError(
          'NOT_IMPLEMENTED',
          'newInsights is served by the gateway from the INSIGHTS stream: subscribe through the gateway',
        );
      },
    },
  },
  Insight: {
    __resolveReference: (reference: { id: string }, context: Context) =>
      loadersOf(context).byId.load(reference.id),
    kpi: (insight: InsightRow) => (insight.kpiCode ? { code: insight.kpiCode } : null),
  },
  AlertRule: {
    kpi: (rule: AlertRuleRow) => ({ code: rule.kpiCode }),
  },
  Kpi: {
    insights: (kpi: { code: string }, args: { limit?: number | null }, context: Context) =>
      kpiInsights(context, kpi.code, checkLimit(args.limit)),
    alerts: (kpi: { code: string }, _: unknown, context: Context) => loadersOf(context).alerts.load(kpi.code),
  },
};
