import { getOperationAST, type ExecutionArgs } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { graphqlRequests, graphqlRequestSeconds, operationLabel } from './metrics.ts';

interface RequestState {
  startedAt: number;
  operation?: string;
  errors: boolean;
}

/**
 * Counts and times every GraphQL request a yoga server (the gateway, a subgraph) answers over HTTP, by
 * operation name and outcome: `ok`, `errors` (a result with errors) or `refused` (HTTP 4xx/5xx, e.g.
 * unauthenticated, over a limit, unparseable).
 */
export function useRequestMetrics(service: string): Plugin {
  const requests = new WeakMap<Request, RequestState>();
  return {
    onRequest({ request }) {
      requests.set(request, { startedAt: performance.now(), errors: false });
    },
    onParams({ request, params }) {
      const state = requests.get(request);
      if (state) state.operation = params.operationName ?? undefined;
    },
    onExecute({ args }) {
      const { document, operationName, contextValue } = args as ExecutionArgs & {
        contextValue: { request: Request };
      };
      const state = requests.get(contextValue.request);
      if (state) state.operation = getOperationAST(document, operationName)?.name?.value ?? state.operation;
    },
    onResultProcess({ request, result }) {
      const state = requests.get(request);
      const results = Array.isArray(result) ? result : [result];
      if (state)
        state.errors = results.some((r) => 'errors' in r && Array.isArray(r.errors) && r.errors.length > 0);
    },
    onResponse({ request, response }) {
      const state = requests.get(request);
      if (!state) return;
      const operation = operationLabel(state.operation);
      const outcome = response.status >= 400 ? 'refused' : state.errors ? 'errors' : 'ok';
      graphqlRequests.inc({ service, operation, outcome });
      graphqlRequestSeconds.observe({ service, operation }, (performance.now() - state.startedAt) / 1000);
    },
  };
}
