// Sends the gateway's subgraph operations: one keep-alive pool per process, the caller's credentials
// forwarded, identical queries in flight shared, a request's fetches to one subgraph in one plan wave
// batched (where the subgraph takes batches), and a failure to reach a subgraph turned into a
// SERVICE_UNAVAILABLE error of that fetch.
import type { GraphQLFormattedError } from 'graphql';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { subgraphFetchesBatched, subgraphFetchesShared, subgraphFetchSeconds } from '../../lib/metrics.ts';
import {
  activeContext,
  ATTR_COMPONENT,
  injectTraceContext,
  linkTo,
  SpanKind,
  withSpan,
  type Context,
} from '../../lib/telemetry.ts';
import { createBatchQueue } from './subgraphBatching.ts';
import { postText } from './subgraphHttp.ts';
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
  // A request's fetches to a batching subgraph in one turn go out as one HTTP request (subgraphBatching.ts):
  // one exchange instead of several, fewer system calls and process wake-ups on both sides.
  // Each queued fetch keeps its trace context, which its batch's span links to.
  const enqueue = createBatchQueue<Caller, Queued, Received>((subgraph, caller, queued) =>
    sendBatch(subgraph, queued, caller),
  );
  const send = (subgraph: string, payload: string, caller: Caller, query: boolean): Promise<Received> => {
    const stopTimer = subgraphFetchSeconds.startTimer({ subgraph });
    // Only queries: a mutation's fetches run one after another anyway, and must never share a request.
    const sent =
      query && options.batching?.(subgraph)
        ? enqueue(subgraph, caller, { payload, context: activeContext() })
        : sendOne(subgraph, payload, caller);
    return sent.then((received) => {
      const { response, failed } = received;
      stopTimer({ outcome: failed ? 'failed' : response.errors?.length ? 'errors' : 'ok' });
      return received;
    });
  };
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
  /**
   * A batch's results, one per fetch: a lone fetch goes out as it is; more go as a JSON array, in a span
   * of their own whose context the subgraph gets: a child of the first fetch's span (the batch is sent
   * from the turn that fetch scheduled, in its context), linked to the others'.
   */
  const sendBatch = async (subgraph: string, queued: Queued[], caller: Caller): Promise<Received[]> => {
    if (queued.length === 1) return [await sendOne(subgraph, queued[0]!.payload, caller)];
    subgraphFetchesBatched.inc({ subgraph }, queued.length);
    const payloads = queued.map((fetch) => fetch.payload);
    const links = queued.slice(1).flatMap((fetch) => linkTo(fetch.context) ?? []);
    const posted = await withSpan(
      `subgraph batch ${subgraph}`,
      {
        kind: SpanKind.CLIENT,
        links,
        attributes: {
          [ATTR_COMPONENT]: 'gateway',
          'pulsegraph.subgraph': subgraph,
          'graphql.batch.operation_count': queued.length,
        },
      },
      () => post(subgraph, `[${payloads.join(',')}]`, caller),
    );
    if ('failed' in posted) return payloads.map(() => posted);
    const answers = Array.isArray(posted.body) ? posted.body : undefined;
    // A subgraph that refuses the batch as a whole answers one GraphQL error body: each fetch gets it.
    const refusal = answers ? undefined : asResponse(posted.body);
    return payloads.map((_, i): Received => {
      const response = refusal ?? asResponse(answers?.[i]);
      if (response && (!answers || answers.length === payloads.length)) return { response };
      const reason = `answered a batch of ${payloads.length} operations with HTTP ${posted.status} and ${answers ? `${answers.length} results` : 'no GraphQL body'}`;
      return { response: failure(subgraph, reason), failed: 'transport' };
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
    try {
      const answer = await postText(agent, url, headers, body, options.timeoutMs);
      return { status: answer.status, body: parseJson(answer.text) };
    } catch (error) {
      const response = failure(subgraph, `is unreachable (${(error as Error).message})`);
      return { response, failed: isTimeout(error) ? 'timeout' : 'transport' };
    }
  };
  return { fetch, breaker, close: () => agent.close() };
}

/** A fetch waiting for its batch: its JSON payload and the trace context it was made in. */
interface Queued {
  payload: string;
  context: Context;
}

/** A subgraph's answer as received (read-only: requests in flight may share it), or why there is none. */
interface Received {
  response: SubgraphResponse;
  failed?: Failure;
}

type Failure = 'timeout' | 'transport';

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
