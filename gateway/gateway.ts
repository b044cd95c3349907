// The federated gateway: our own query-plan executor over @apollo/query-planner serves queries and
// mutations through graphql-yoga, and the subscription engine serves graphql-ws and SSE.
import type { ExecutionArgs } from 'graphql';
import { createYoga, type Plugin } from 'graphql-yoga';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenVerifier } from '../lib/auth.ts';
import { requestError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { useRequestMetrics } from '../lib/requestMetrics.ts';
import type { StreamFeeds } from '../streams/feeds.ts';
import { executeOperation } from './execution/execute.ts';
import { bodyBuffersFor } from './execution/responseBuffers.ts';
import { limitDocuments } from './execution/documents.ts';
import type { ResilienceOptions } from './execution/circuitBreaker.ts';
import { createSubgraphFetcher, type Caller } from './execution/subgraphFetcher.ts';
import { loadSupergraph, type LoadedSupergraph } from './execution/supergraph.ts';
import { PersistedOperations } from './persistedOperations.ts';
import { useAuth, type GatewayContext } from './plugins/useAuth.ts';
import { useCsrfPrevention } from './plugins/useCsrfPrevention.ts';
import { keepPlatformErrors, useErrorMasking } from './plugins/useErrorMasking.ts';
import { useFieldAuthorization } from './plugins/useFieldAuthorization.ts';
import { operationLimits, useOperationLimits, type OperationLimits } from './plugins/useOperationLimits.ts';
import { usePersistedOperations } from './plugins/usePersistedOperations.ts';
import { useRateLimit } from './plugins/useRateLimit.ts';
import { useTracing } from './plugins/useTracing.ts';
import type { RateLimiter } from './rateLimit.ts';
import { SubscriptionEngine } from './subscriptions/engine.ts';
import { UpstreamSubscriptions } from './subscriptions/upstream.ts';

/** Options of the federated gateway. */
export interface GatewayOptions {
  supergraphSdl: string;
  /** Routing URL overrides by subgraph name (e.g. container host names). */
  subgraphUrls: Record<string, string | undefined>;
  verifier: TokenVerifier;
  logger: Logger;
  production: boolean;
  allowAnonymousIntrospection: boolean;
  /** Whether __schema/__type are served (default: not in production). */
  introspection?: boolean;
  subgraphTimeoutMs: number;
  /** Circuit breaking and retries towards subgraphs (defaults: execution/circuitBreaker.ts). */
  subgraphResilience?: Partial<ResilienceOptions>;
  /** Whether identical query fetches in flight share one subgraph request (default true). */
  subgraphDedupe?: boolean;
  /** Subgraphs whose fetches in one wave of a plan go out as one batched request (`*`: all; default none). */
  subgraphBatching?: readonly string[];
  /** JetStream feeds for stream-bound subscription fields (absent without NATS). */
  feeds?: StreamFeeds;
  /** Results a subscriber may have queued before it is closed as too slow. */
  subscriberQueueLimit?: number;
  /**
   * Operation limits over every transport (defaults: useOperationLimits.ts; production also limits
   * introspection and hides "Did you mean" suggestions).
   */
  limits?: Partial<OperationLimits>;
  /** Rate limits per tenant and token over every transport (gateway/rateLimit.ts); none without it. */
  rateLimiter?: RateLimiter;
  /**
   * Persisted operations (manifest, APQ store, persisted-only mode) over every transport; the gateway
   * closes it. Default: APQ in memory, no manifest.
   */
  persistedOperations?: PersistedOperations;
}

/** The gateway: HTTP handler, subscription engine, and the supergraph it serves (swappable). */
export type Gateway = ReturnType<typeof createGateway>;

/** The caller's credentials as forwarded to subgraphs. */
export function callerOf(headers: { get(name: string): string | null }): Caller {
  return {
    authorization: headers.get('authorization') ?? undefined,
    requestId: headers.get('x-request-id') ?? undefined,
  };
}

/** Builds the gateway over a supergraph SDL. */
export function createGateway(options: GatewayOptions) {
  const limits = operationLimits(
    { ...options.limits, introspection: options.introspection ?? !options.production },
    options.production,
  );
  const persistedOperations = options.persistedOperations ?? new PersistedOperations();
  let supergraph = loadSupergraph(options.supergraphSdl);
  limitDocuments(supergraph.schema, limits);
  const resolveUrls = () => {
    const resolved = new Map(supergraph.routingUrls);
    for (const [name, url] of Object.entries(options.subgraphUrls)) if (url) resolved.set(name, url);
    return resolved;
  };
  // Resolved once per supergraph: every subgraph fetch reads it.
  let resolvedUrls = resolveUrls();
  const urls = () => resolvedUrls;
  // Read on every fetch: the list is turned into a set once.
  const batched = new Set(options.subgraphBatching);
  const batchAll = batched.has('*');
  const fetcher = createSubgraphFetcher({
    urls,
    timeoutMs: options.subgraphTimeoutMs,
    resilience: options.subgraphResilience,
    dedupe: options.subgraphDedupe ?? true,
    batching: (subgraph) => batchAll || batched.has(subgraph),
  });
  const upstream = new UpstreamSubscriptions(urls, options.logger);
  const engine = new SubscriptionEngine({
    feeds: options.feeds,
    fetch: fetcher.fetch,
    upstream,
    logger: options.logger,
    capacity: options.subscriberQueueLimit ?? 1_000,
  });
  let ending = false;
  let setSchema: ((schema: LoadedSupergraph['schema']) => void) | undefined;
  const execution: Plugin<GatewayContext> = {
    onPluginInit(context) {
      setSchema = context.setSchema;
      setSchema(supergraph.schema);
    },
    onExecute({ args, setExecuteFn }) {
      const { contextValue, document, operationName, variableValues } = args as ExecutionArgs & {
        contextValue: GatewayContext & { res?: ServerResponse };
      };
      setExecuteFn(() =>
        executeOperation({
          supergraph,
          document,
          operationName,
          variables: variableValues ?? {},
          caller: callerOf(contextValue.request.headers),
          fetch: fetcher.fetch,
          // An HTTP answer (the server's context has its response): its body's memory is reused once sent.
          ...(contextValue.res && { body: bodyBuffersFor(contextValue.res) }),
        }),
      );
    },
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(() => ({
        errors: [
          requestError(
            'BAD_REQUEST',
            'subscriptions run over graphql-ws (WebSocket) or SSE (Accept: text/event-stream)',
          ),
        ],
      }));
    },
  };
  const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }, GatewayContext>({
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: false,
    logging: false,
    // CORS is answered before yoga, for every endpoint alike (httpSecurity.ts).
    cors: false,
    // The API takes no file uploads: multipart bodies are refused with 415 like any other unknown type.
    multipart: false,
    // Bodies are bounded before yoga sees them (lib/httpTransport.ts and transports/sse.ts: MAX_BODY_BYTES;
    // the ingest endpoint builds its own under INGEST_MAX_BODY_BYTES).
    maxRequestBodySize: false,
    maskedErrors: options.production ? { maskError: keepPlatformErrors } : false,
    plugins: [
      // First: its span is active around every other plugin and the plan's fetches.
      useTracing(),
      useRequestMetrics('gateway'),
      useCsrfPrevention(),
      ...(options.production ? [useErrorMasking(options.logger)] : []),
      useAuth({
        verifier: options.verifier,
        allowAnonymousIntrospection: options.allowAnonymousIntrospection,
      }),
      // Before useOperationLimits, which checks the tokens of the text it resolves.
      usePersistedOperations(persistedOperations),
      useOperationLimits(limits),
      ...(options.rateLimiter ? [useRateLimit(options.rateLimiter)] : []),
      // Last before planning: @requiresScopes of every selected field, against the supergraph served now.
      useFieldAuthorization(() => supergraph),
      execution,
    ],
  });
  return {
    yoga,
    engine,
    /** The limits every operation is held to, over HTTP, graphql-ws and SSE. */
    limits,
    /** How requests name documents by id (manifest, APQ), over HTTP, graphql-ws and SSE. */
    persistedOperations,
    /** The rate limits every operation is charged to, over HTTP, graphql-ws and SSE (if any). */
    rateLimiter: options.rateLimiter,
    fetch: fetcher.fetch,
    /** The supergraph being served now. */
    get supergraph() {
      return supergraph;
    },
    /** Subgraph name -> the URL the gateway routes to. */
    get subgraphUrls(): Record<string, string> {
      return Object.fromEntries(urls());
    },
    /**
     * Serves a new supergraph from now on; throws (and keeps the old one) when it does not load.
     * Running subscriptions keep the plan they started with, so none is dropped.
     */
    reload(sdl: string): void {
      const next = loadSupergraph(sdl);
      limitDocuments(next.schema, limits);
      supergraph = next;
      resolvedUrls = resolveUrls();
      setSchema?.(next.schema);
    },
    /** Ends every live subscription (on shutdown, before in-flight requests are waited for). */
    endSubscriptions(): void {
      ending = true;
      engine.close();
      upstream.close();
    },
    /** Whether subscriptions are being ended for a shutdown: transports end them resumably. */
    get ending(): boolean {
      return ending;
    },
    async close() {
      ending = true;
      engine.close();
      upstream.close();
      await fetcher.close();
      await persistedOperations.close();
    },
  };
}
