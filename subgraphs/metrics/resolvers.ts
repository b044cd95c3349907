import { authorize } from '../../lib/auth.ts';
import { appError } from '../../lib/errors.ts';
import { scalars } from '../../lib/scalars.ts';
import type { PlatformDeps, SubgraphContext } from '../../lib/subgraphServer.ts';

type Context = SubgraphContext<PlatformDeps>;

// The event pipeline (ingestion, rollups, KPI values) is not built yet: nothing is stored, so
// reads honestly answer "no values" and writes say plainly that they are not available.
const notYet = (what: string) => () => {
  throw appError('NOT_IMPLEMENTED', `${what} is not available yet in this version of Pulsegraph`);
};

/** Resolvers of the metrics subgraph. */
export const resolvers = {
  ...scalars,
  Query: {
    metrics: (_: unknown, __: unknown, context: Context) => {
      authorize(context.principal, 'read');
      return [];
    },
  },
  Mutation: {
    ingestEvents: (_: unknown, __: unknown, context: Context) => {
      authorize(context.principal, 'ingest');
      return notYet('ingestEvents')();
    },
  },
  Subscription: {
    kpiUpdated: { subscribe: notYet('kpiUpdated') },
    metricUpdates: { subscribe: notYet('metricUpdates') },
  },
  Kpi: {
    __resolveReference: (reference: { code: string }, context: Context) => {
      authorize(context.principal, 'read');
      return reference;
    },
    current: () => null,
    series: () => [],
  },
};
