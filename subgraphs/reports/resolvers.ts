import type pg from 'pg';
import { authorize, type Principal } from '../../lib/auth.ts';
import { appError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { reportProgressChannel, type RedisPubSub, type ReportProgress } from '../../lib/redis.ts';
import { scalars } from '../../lib/scalars.ts';
import type { Broker } from '../../streams/connection.ts';

/** What every reports resolver receives. */
export interface ReportsContext {
  principal: Principal;
  logger: Logger;
  pool: pg.Pool;
  broker: Broker;
  /** Named so, not pubsub: mercurius puts its own pubsub in a subscription's context. */
  redis: RedisPubSub;
}

// Report storage and generation are not built yet: no report exists, so reads are empty and
// writes say plainly that they are not available rather than pretending to succeed.
const notYet = (what: string) => {
  throw appError('NOT_IMPLEMENTED', `${what} is not available yet in this version of Pulsegraph`);
};

/** Resolvers of the reports subgraph (mercurius). */
export const resolvers = {
  ...scalars,
  Query: {
    reports: (_: unknown, __: unknown, context: ReportsContext) => {
      authorize(context.principal, 'read');
      return [];
    },
    report: (_: unknown, __: { id: string }, context: ReportsContext) => {
      authorize(context.principal, 'read');
      return null;
    },
  },
  Mutation: {
    createReport: (_: unknown, __: unknown, context: ReportsContext) => {
      authorize(context.principal, 'report');
      return notYet('createReport');
    },
    updateReport: (_: unknown, __: unknown, context: ReportsContext) => {
      authorize(context.principal, 'report');
      return notYet('updateReport');
    },
    generateReport: (_: unknown, __: unknown, context: ReportsContext) => {
      authorize(context.principal, 'report');
      return notYet('generateReport');
    },
  },
  Subscription: {
    reportProgress: {
      // The channel is always the caller's own tenant's, whatever report id it asks for.
      subscribe: (_: unknown, args: { id: string }, context: ReportsContext) => {
        const { tenant } = authorize(context.principal, 'subscribe');
        return context.redis.asyncIterator<ReportProgress>(reportProgressChannel(tenant, args.id));
      },
      // Events are published bare, not wrapped as { reportProgress }.
      resolve: (progress: ReportProgress) => progress,
    },
  },
  Report: {
    __resolveReference: (_: { id: string }, __: unknown, context: ReportsContext) => {
      authorize(context.principal, 'read');
      return null;
    },
  },
};
