import DataLoader from 'dataloader';
import type pg from 'pg';
import { withTenant, withTenantRead } from '../../db/pool.ts';
import type { Principal } from '../../lib/auth.ts';
import { appError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { RedisPubSub, ReportProgress } from '../../lib/redis.ts';
import { scalars } from '../../lib/scalars.ts';
import { perRequest } from '../../lib/perRequest.ts';
import type { Broker } from '../../streams/connection.ts';
import { enqueueGeneration, followProgress } from './queue.ts';
import { generationStore, kpiDimensions, reportStore, type GenerationRow, type ReportRow } from './store.ts';
import {
  normaliseChanges,
  normaliseNewReport,
  type CreateReportInput,
  type UpdateReportInput,
} from './validate.ts';

/** What every reports resolver receives. */
export interface ReportsContext {
  principal: Principal;
  logger: Logger;
  pool: pg.Pool;
  broker: Broker;
  /** Named so, not pubsub: mercurius puts its own pubsub in a subscription's context. */
  redis: RedisPubSub;
}

// One loader per request: the status and lastRun of every listed report come from one query.
const generationLoader = perRequest(
  (context: ReportsContext) =>
    new DataLoader<string, GenerationRow | null>(async (ids) => {
      const latest = await withTenantRead(context.pool, context.principal.tenant, (client) =>
        generationStore.latestOf(client, ids),
      );
      return ids.map((id) => latest.get(id) ?? null);
    }),
);
const latestGeneration = (context: ReportsContext, reportId: string): Promise<GenerationRow | null> =>
  generationLoader(context).load(reportId);

const notFound = (id: string) => appError('NOT_FOUND', `no report with id "${id}"`, { field: 'id' });

/** Resolvers of the reports subgraph (mercurius). */
export const resolvers = {
  ...scalars,
  Query: {
    reports: (
      _: unknown,
      args: { type?: string | null; status?: string | null },
      context: ReportsContext,
    ) => {
      const { tenant } = context.principal;
      const filter = { type: args.type ?? undefined, status: args.status ?? undefined };
      return withTenantRead(context.pool, tenant, (client) => reportStore.list(client, filter));
    },
    report: async (_: unknown, args: { id: string }, context: ReportsContext) => {
      const { tenant } = context.principal;
      return (
        (await withTenantRead(context.pool, tenant, (client) => reportStore.get(client, args.id))) ?? null
      );
    },
  },
  Mutation: {
    createReport: async (_: unknown, args: { input: CreateReportInput }, context: ReportsContext) => {
      const { tenant } = context.principal;
      const report = await withTenant(context.pool, tenant, async (client) => {
        const kpis = await kpiDimensions(client, args.input.config.metrics);
        return reportStore.create(client, normaliseNewReport(args.input, kpis));
      });
      context.logger.info({ reportId: report.id, type: report.type }, 'report created');
      return report;
    },
    updateReport: async (
      _: unknown,
      args: { id: string; input: UpdateReportInput },
      context: ReportsContext,
    ) => {
      const { tenant } = context.principal;
      return withTenant(context.pool, tenant, async (client) => {
        const existing = await reportStore.get(client, args.id);
        if (!existing) throw notFound(args.id);
        const kpis = args.input.config
          ? await kpiDimensions(client, args.input.config.metrics)
          : new Map<string, string[]>();
        const changes = normaliseChanges(args.input, existing, kpis);
        return (await reportStore.update(client, args.id, changes)) ?? existing;
      });
    },
    generateReport: async (_: unknown, args: { id: string }, context: ReportsContext) => {
      const { tenant } = context.principal;
      const generation = await enqueueGeneration(context, tenant, args.id);
      // A manual generation is never a duplicate of a scheduled tick.
      if (!generation) throw new Error(`generation of report ${args.id} was not created`);
      context.logger.info({ reportId: args.id, generationId: generation.id }, 'report generation queued');
      return generation;
    },
  },
  Subscription: {
    reportProgress: {
      // The channel is always the caller's own tenant's, and the report must be one of its own; the first
      // event is the latest generation's stored state, so that a late subscriber sees how it ended.
      subscribe: async (_: unknown, args: { id: string }, context: ReportsContext) => {
        const { tenant } = context.principal;
        const report = await withTenantRead(context.pool, tenant, (client) =>
          reportStore.get(client, args.id),
        );
        if (!report) throw notFound(args.id);
        return followProgress(context.redis, tenant, args.id, () =>
          withTenantRead(context.pool, tenant, (client) => generationStore.latest(client, args.id)),
        );
      },
      // Events are published bare, not wrapped as { reportProgress }.
      resolve: (progress: ReportProgress) => progress,
    },
  },
  Report: {
    __resolveReference: async (reference: { id: string }, _: unknown, context: ReportsContext) => {
      const { tenant } = context.principal;
      return (
        (await withTenantRead(context.pool, tenant, (client) => reportStore.get(client, reference.id))) ??
        null
      );
    },
    /** READY until it has a generation, then its latest generation's status (DRAFT is never produced). */
    status: async (report: ReportRow, _: unknown, context: ReportsContext) =>
      (await latestGeneration(context, report.id))?.status ?? 'READY',
    lastRun: (report: ReportRow, _: unknown, context: ReportsContext) => latestGeneration(context, report.id),
    // Keys only: the gateway resolves every other Kpi field from the metadata and metrics subgraphs.
    kpis: (report: ReportRow) => report.config.metrics.map((code) => ({ code })),
  },
  ReportGeneration: {
    // Served by the gateway, relative to it; only a COMPLETED generation has an output.
    downloadUrl: (generation: GenerationRow) =>
      generation.status === 'COMPLETED' ? `/reports/${generation.id}/download` : null,
  },
};
