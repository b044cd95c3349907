// Sends the gateway's subgraph operations: one keep-alive pool per process, the caller's credentials
// forwarded, identical queries in flight shared, a request's fetches to one subgraph in one plan wave
// batched (where the subgraph takes batches), and a failure to reach a subgraph turned into a
// SERVICE_UNAVAILABLE error of that fetch.
import type { GraphQLFormattedError } from 'graphql';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { subgraphFetchesBatched, subgraphFetchesShared, subgraphFetchSeconds } from '../../lib/metrics.ts';
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
  /** Whether fetches to a subgraph are batched (SUBGRAPH_BATCHING; default none). */
  batching?: (subgraph: string) => boolean;
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
    const idempotent = isIdempotent(query);
    const retries = idempotent ? resilience.retries : 0;
    for (let attempt = 0; ; attempt++) {
      if (!breaker.allow(subgraph)) {
        const seconds = Math.ceil(breaker.retryAfterMs(subgraph) / 1000);
        return { response: failure(subgraph, `is failing: circuit open, next attempt in ${seconds} s`) };
      }
      const received = await send(subgraph, payload, caller, idempotent);
      if (!received.failed) {
        breaker.succeeded(subgraph);
        return received;
      }
      breaker.failed(subgraph);
      if (received.failed === 'timeout' || attempt >= retries) return received;
      await sleep(backoffDelayMs(attempt + 1, resilience.retryBaseDelayMs));
    }
  };
  // Batching (SUBGRAPH_BATCHING): the fetches of one caller to one subgraph that start in the same turn of
  // the event loop (a plan's wave: the fetches a Parallel node starts, or that answers arriving together
  // release) go out as one HTTP request whose body is the JSON array of their operations, answered by the
  // array of their results (graphql-yoga's `batching`, Apollo Server's allowBatchedHttpRequests). One
  // exchange instead of several: fewer system calls and process wake-ups on both sides.
  const batches = new WeakMap<Caller, Map<string, Batch>>();
  const send = (subgraph: string, payload: string, caller: Caller, query: boolean): Promise<Received> => {
    const stopTimer = subgraphFetchSeconds.startTimer({ subgraph });
    // Only queries: a mutation's fetches run one after another anyway, and must never share a request.
    const sent =
      query && options.batching?.(subgraph)
        ? enqueue(subgraph, payload, caller)
        : sendOne(subgraph, payload, caller);
    return sent.then((received) => {
      const { response, failed } = received;
      stopTimer({ outcome: failed ? 'failed' : response.errors?.length ? 'errors' : 'ok' });
      return received;
    });
  };
  const enqueue = (subgraph: string, payload: string, caller: Caller) =>
    new Promise<Received>((resolve, reject) => {
      let bySubgraph = batches.get(caller);
      if (!bySubgraph) batches.set(caller, (bySubgraph = new Map<string, Batch>()));
      let batch = bySubgraph.get(subgraph);
      if (!batch) {
        const open: Batch = (batch = { payloads: [], waiters: [] });
        const waiting = bySubgraph;
        waiting.set(subgraph, open);
        setImmediate(() => {
          if (waiting.get(subgraph) === open) waiting.delete(subgraph);
          sendBatch(subgraph, open, caller).catch((error: unknown) => {
            for (const waiter of open.waiters) waiter.reject(error);
          });
        });
      }
      batch.payloads.push(payload);
      batch.waiters.push({ resolve, reject });
      // A full batch is closed (its flush is still the one scheduled): the next fetch opens another.
      if (batch.payloads.length === BATCH_LIMIT) bySubgraph.delete(subgraph);
    });
  const sendOne = async (subgraph: string, payload: string, caller: Caller): Promise<Received> => {
    const posted = await post(subgraph, payload, caller);
    if ('failed' in posted) return posted;
    const parsed = asResponse(posted.body);
    if (parsed) return { response: parsed };
    return {
      response: failure(subgraph, `answered HTTP ${posted.status} without a GraphQL body`),
      failed: 'transport',
    };
  };
  const sendBatch = async (subgraph: string, batch: Batch, caller: Caller): Promise<void> => {
    const { payloads, waiters } = batch;
    if (payloads.length === 1) return waiters[0]!.resolve(await sendOne(subgraph, payloads[0]!, caller));
    subgraphFetchesBatched.inc({ subgraph }, payloads.length);
    const posted = await post(subgraph, `[${payloads.join(',')}]`, caller);
    if ('failed' in posted) return waiters.forEach(({ resolve }) => resolve(posted));
    const answers = Array.isArray(posted.body) ? posted.body : undefined;
    // A subgraph that refuses the batch as a whole answers one GraphQL error body: each fetch gets it.
    const refusal = answers ? undefined : asResponse(posted.body);
    waiters.forEach(({ resolve }, i) => {
      const response = refusal ?? asResponse(answers?.[i]);
      if (response && (!answers || answers.length === payloads.length)) return resolve({ response });
      const reason = `answered a batch of ${payloads.length} operations with HTTP ${posted.status} and ${answers ? `${answers.length} results` : 'no GraphQL body'}`;
      resolve({ response: failure(subgraph, reason), failed: 'transport' });
    });
  };
  /** One HTTP exchange: the parsed JSON body (undefined when it is not JSON), or why there is none. */
  const post = async (
    subgraph: string,
    body: string,
    caller: Caller,
  ): Promise<{ status: number; body: unknown } | (Received & { failed: Failure })> => {
    const url = options.urls().get(subgraph);
    if (!url) throw new Error(`no routing URL for subgraph ${subgraph}`);
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
        body,
        dispatcher: agent,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        signal: deadline.signal,
      });
      return { status: response.statusCode, body: parseJson(await response.body.text()) };
    } catch (error) {
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
  failed?: Failure;
}

type Failure = 'timeout' | 'transport';

/** Fetches of one caller to one subgraph waiting to go out together, and how to settle each. */
interface Batch {
  payloads: string[];
  waiters: Array<{ resolve: (received: Received) => void; reject: (error: unknown) => void }>;
}

/** The most operations sent in one batch (graphql-yoga's default limit with `batching: true`). */
export const BATCH_LIMIT = 10;

function isTimeout(error: unknown): boolean {
  const { name, code } = error as { name?: string; code?: string };
  return name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** `body` when it is a GraphQL response (an object with data or errors). */
function asResponse(body: unknown): SubgraphResponse | undefined {
  return body && typeof body === 'object' && !Array.isArray(body) && ('data' in body || 'errors' in body)
    ? (body as SubgraphResponse)
    : undefined;
}

function failure(subgraph: string, reason: string): SubgraphResponse {
  return {
    data: null,
    errors: [{ message: `subgraph ${subgraph} ${reason}`, extensions: { code: 'SERVICE_UNAVAILABLE' } }],
  };
}
