import { authorize } from '../../lib/auth.ts';
import { appError } from '../../lib/errors.ts';
import { scalars } from '../../lib/scalars.ts';
import type { PlatformDeps, SubgraphContext } from '../../lib/subgraphServer.ts';

type Context = SubgraphContext<PlatformDeps>;

// No detector runs yet, so no insight exists: lists are empty and references resolve to null.
/** Resolvers of the insights subgraph. */
export const resolvers = {
  DateTime: scalars.DateTime,
  Query: {
    insights: (_: unknown, __: unknown, context: Context) => {
      authorize(context.principal, 'read');
      return [];
    },
  },
  Subscription: {
    newInsights: {
      subscribe: () => {
        throw appError('NOT_IMPLEMENTED', 'newInsights is not available yet in this version of Pulsegraph');
      },
    },
  },
  Insight: {
    __resolveReference: (_: { id: string }, context: Context) => {
      authorize(context.principal, 'read');
      return null;
    },
  },
  Kpi: {
    __resolveReference: (reference: { code: string }, context: Context) => {
      authorize(context.principal, 'read');
      return reference;
    },
    insights: () => [],
  },
};
