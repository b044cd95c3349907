// Sends the gateway's subgraph operations: one keep-alive pool per process, the caller's credentials
// forwarded, and a failure to reach a subgraph turned into a SERVICE_UNAVAILABLE error of that fetch.
import type { GraphQLFormattedError } from 'graphql';
import { Agent, request } from 'undici';

/** Who a subgraph operation is sent for: the caller's Authorization header and request id. */
export interface Caller {
  authorization?: string;
  requestId?: string;
}

/** A subgraph's answer. */
export interface SubgraphResponse {
  data?: Record<string, unknown> | null;
  errors?: GraphQLFormattedError[];
}

/** Sends one operation to a subgraph by name. */
export type SubgraphFetch = (
  subgraph: string,
  body: { query: string; variables?: Record<string, unknown>; operationName?: string },
  caller: Caller,
) => Promise<SubgraphResponse>;

/** A fetcher over undici with per-request timeouts; `urls` maps subgraph names to GraphQL endpoints. */
export function createSubgraphFetcher(options: { urls: () => Map<string, string>; timeoutMs: number }) {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 128, pipelining: 1 });
  const fetch: SubgraphFetch = async (subgraph, body, caller) => {
    const url = options.urls().get(subgraph);
    if (!url) throw new Error(`no routing URL for subgraph ${subgraph}`);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
    };
    if (caller.authorization) headers['authorization'] = caller.authorization;
    if (caller.requestId) headers['x-request-id'] = caller.requestId;
    try {
      const response = await request(url, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        dispatcher: agent,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      const text = await response.body.text();
      const parsed = parseBody(text);
      if (parsed) return parsed;
      return failure(subgraph, `answered HTTP ${response.statusCode} without a GraphQL body`);
    } catch (error) {
      return failure(subgraph, `is unreachable (${(error as Error).message})`);
    }
  };
  return { fetch, close: () => agent.close() };
}

function parseBody(text: string): SubgraphResponse | undefined {
  try {
    const body = JSON.parse(text) as SubgraphResponse;
    return body && typeof body === 'object' && ('data' in body || 'errors' in body) ? body : undefined;
  } catch {
    return undefined;
  }
}

function failure(subgraph: string, reason: string): SubgraphResponse {
  return {
    data: null,
    errors: [{ message: `subgraph ${subgraph} ${reason}`, extensions: { code: 'SERVICE_UNAVAILABLE' } }],
  };
}
