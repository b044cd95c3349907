// Sends the gateway's subgraph operations: one keep-alive pool per process, the caller's credentials
// forwarded, and a failure to reach a subgraph turned into a SERVICE_UNAVAILABLE error of that fetch.
import type { GraphQLFormattedError } from 'graphql';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { subgraphFetchesShared, subgraphFetchSeconds } from '../../lib/metrics.ts';
import { ATTR_COMPONENT, injectTraceContext, SpanKind, withSpan } from '../../lib/telemetry.ts';
import {
  backoffDelayMs,
  CircuitBreaker,
  defaultResilience,
  isIdempotent,
  type ResilienceOptions,
} from './circuitBreaker.ts';

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

/**
 * A fetcher over undici with per-request timeouts, a circuit breaker per subgraph and retries of
 * queries (gateway/execution/circuitBreaker.ts); `urls` maps subgraph names to GraphQL endpoints.
 */
export function createSubgraphFetcher(options: {
  urls: () => Map<string, string>;
  timeoutMs: number;
  resilience?: Partial<ResilienceOptions>;
  /** Share one subgraph request among identical queries in flight (SUBGRAPH_DEDUPE; default on). */
  dedupe?: boolean;
}) {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 128, pipelining: 1 });
  const resilience = { ...defaultResilience, ...options.resilience };
  const breaker = new CircuitBreaker(resilience);
  // Identical query fetches in flight (same subgraph, operation, variables and Authorization) share one
  // request and its parsed answer, as Apollo Router's deduplicate_query and Hive Gateway do; the plan
  // executor never writes into an answer (planExecutor.ts copies what it merges into). Mutations are
  // never shared.
  // Keyed by subgraph and Authorization, then by the payload itself (not a concatenation: that would copy
  // every payload, representations and all, once more per fetch).
  const inFlight = new Map<string, Map<string, Promise<Received>>>();
  const fetch: SubgraphFetch = (subgraph, body, caller) =>
    withSpan(
      `subgraph fetch ${subgraph}`,
      { kind: SpanKind.CLIENT, attributes: { [ATTR_COMPONENT]: 'gateway', 'pulsegraph.subgraph': subgraph } },
      async () => {
        const payload = JSON.stringify(body);
        if (options.dedupe === false || !isIdempotent(body.query))
          return (await sendResilient(subgraph, payload, body.query, caller)).response;
        const key = `${subgraph}\n${caller.authorization ?? ''}`;
        let sameCaller = inFlight.get(key);
        if (!sameCaller) inFlight.set(key, (sameCaller = new Map<string, Promise<Received>>()));
        let shared = sameCaller.get(payload);
        if (shared) subgraphFetchesShared.inc({ subgraph });
        else {
          const waiting = sameCaller;
          shared = sendResilient(subgraph, payload, body.query, caller).finally(() => {
            waiting.delete(payload);
            if (waiting.size === 0 && inFlight.get(key) === waiting) inFlight.delete(key);
          });
          sameCaller.set(payload, shared);
        }
        return (await shared).response;
      },
    );
  // A timeout is not retried: the caller has already waited the whole bound once.
  const sendResilient = async (
    subgraph: string,
    payload: string,
    query: string,
    caller: Caller,
  ): Promise<Received> => {
    const retries = isIdempotent(query) ? resilience.retries : 0;
    for (let attempt = 0; ; attempt++) {
      if (!breaker.allow(subgraph)) {
        const seconds = Math.ceil(breaker.retryAfterMs(subgraph) / 1000);
        return { response: failure(subgraph, `is failing: circuit open, next attempt in ${seconds} s`) };
      }
      const received = await send(subgraph, payload, caller);
      if (!received.failed) {
        breaker.succeeded(subgraph);
        return received;
      }
      breaker.failed(subgraph);
      if (received.failed === 'timeout' || attempt >= retries) return received;
      await sleep(backoffDelayMs(attempt + 1, resilience.retryBaseDelayMs));
    }
  };
  const send = async (subgraph: string, payload: string, caller: Caller): Promise<Received> => {
    const url = options.urls().get(subgraph);
    if (!url) throw new Error(`no routing URL for subgraph ${subgraph}`);
    const stopTimer = subgraphFetchSeconds.startTimer({ subgraph });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
    };
    if (caller.authorization) headers['authorization'] = caller.authorization;
    if (caller.requestId) headers['x-request-id'] = caller.requestId;
    injectTraceContext((key, value) => (headers[key] = value));
    // A deadline for the whole exchange, cleared when it ends: AbortSignal.timeout would keep a timer (and
    // its signal) alive for the full timeout after every fetch, tens of thousands of them under load.
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new DOMException('subgraph timeout', 'TimeoutError')),
      options.timeoutMs,
    );
    try {
      const response = await request(url, {
        method: 'POST',
        headers,
        body: payload,
        dispatcher: agent,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        signal: deadline.signal,
      });
      const text = await response.body.text();
      const parsed = parseBody(text);
      stopTimer({ outcome: parsed?.errors?.length ? 'errors' : parsed ? 'ok' : 'failed' });
      if (parsed) return { response: parsed };
      const reason = `answered HTTP ${response.statusCode} without a GraphQL body`;
      return { response: failure(subgraph, reason), failed: 'transport' };
    } catch (error) {
      stopTimer({ outcome: 'failed' });
      const response = failure(subgraph, `is unreachable (${(error as Error).message})`);
      return { response, failed: isTimeout(error) ? 'timeout' : 'transport' };
    } finally {
      clearTimeout(timer);
    }
  };
  return { fetch, breaker, close: () => agent.close() };
}

/** A subgraph's answer as received (read-only: requests in flight may share it), or why there is none. */
interface Received {
  response: SubgraphResponse;
  failed?: 'timeout' | 'transport';
}

function isTimeout(error: unknown): boolean {
  const { name, code } = error as { name?: string; code?: string };
  return name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
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
