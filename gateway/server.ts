// The gateway process: `npm run gateway -- [--supergraph FILE] [--port N]`, or started by `npm start`.
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createTokenVerifier } from '../lib/auth.ts';
import type { Config } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { collectProcessMetrics } from '../lib/metrics.ts';
import {
  closeServer,
  isMainModule,
  listen,
  runService,
  withHealthRoutes,
  type ReadinessChecks,
  type RunningService,
} from '../lib/service.ts';
import { createDashboardAssets, isDashboardPath } from './dashboardAssets.ts';
import { createGateway } from './gateway.ts';
import { createHttpSecurity } from './httpSecurity.ts';
import { createIngestEndpoint } from './ingestEndpoint.ts';
import { configurePersistedOperations } from './persistedOperations.ts';
import { budgetsOf, createRateLimiter } from './rateLimit.ts';
import { createReportDownload, isReportDownloadPath } from './reportDownload.ts';
import { watchSupergraph } from './supergraphWatch.ts';
import { createHttpTransport } from '../lib/httpTransport.ts';
import { createSseHandler, wantsEventStream } from './transports/sse.ts';
import { attachWebSocket } from './transports/websocket.ts';

/** Probes a subgraph's own /readyz next to its GraphQL endpoint. */
function subgraphReady(graphqlUrl: string): () => Promise<boolean> {
  const readyUrl = new URL('/readyz', graphqlUrl);
  return async () => (await fetch(readyUrl, { signal: AbortSignal.timeout(2_000) })).ok;
}

// The clients of NATS and Postgres (and of Redis: rateLimit.ts, persistedOperations.ts) are loaded only
// when their URL is set: the gateway alone over any supergraph (`npm run gateway`) carries none of them.

/** NATS for subscriptions: the broker, the gateway's stream feeds and a readiness probe. */
async function connectStreams(url: string, logger: Logger) {
  const [{ connectBroker, pingBroker }, { StreamFeeds }] = await Promise.all([
    import('../streams/connection.ts'),
    import('../streams/feeds.ts'),
  ]);
  const broker = await connectBroker(url, 'gateway', logger);
  return { broker, feeds: new StreamFeeds(broker.nc, broker.js, logger), ready: () => pingBroker(broker.nc) };
}

/** Postgres for report downloads: a small pool and a readiness probe. */
async function openDatabase(url: string) {
  const { createPool, pingDatabase } = await import('../db/pool.ts');
  const pool = createPool(url, 2, 'gateway');
  return { pool, ready: () => pingDatabase(pool) };
}

/** Starts the gateway over the supergraph at config.SUPERGRAPH_PATH on config.GATEWAY_PORT. */
export async function startGateway(config: Config, logger: Logger): Promise<RunningService> {
  // First: PERSISTED_ONLY=true without a readable manifest stops the gateway before it connects anywhere.
  const persistedOperations = await configurePersistedOperations(config, logger);
  const verifier = await createTokenVerifier(config);
  const streams = config.NATS_URL ? await connectStreams(config.NATS_URL, logger) : undefined;
  const feeds = streams?.feeds;
  const rateLimiter = await createRateLimiter({
    budgets: budgetsOf(config),
    burst: config.RATE_LIMIT_BURST,
    refusalDelayMs: config.RATE_LIMIT_REFUSAL_DELAY_MS,
    redisUrl: config.REDIS_URL,
    logger,
  });
  const gateway = createGateway({
    supergraphSdl: await readFile(config.SUPERGRAPH_PATH, 'utf8'),
    subgraphUrls: {
      metadata: config.SUBGRAPH_METADATA_URL,
      metrics: config.SUBGRAPH_METRICS_URL,
      reports: config.SUBGRAPH_REPORTS_URL,
      insights: config.SUBGRAPH_INSIGHTS_URL,
    },
    verifier,
    logger,
    production: config.NODE_ENV === 'production',
    allowAnonymousIntrospection: config.AUTH_MODE === 'dev',
    introspection: config.INTROSPECTION,
    subgraphTimeoutMs: config.SUBGRAPH_TIMEOUT_MS,
    subgraphResilience: {
      failureThreshold: config.SUBGRAPH_CIRCUIT_FAILURES,
      coolDownMs: config.SUBGRAPH_CIRCUIT_COOLDOWN_MS,
      retries: config.SUBGRAPH_RETRIES,
    },
    subgraphDedupe: config.SUBGRAPH_DEDUPE,
    subgraphBatching: config.SUBGRAPH_BATCHING,
    feeds,
    subscriberQueueLimit: config.SUBSCRIBER_QUEUE_LIMIT,
    rateLimiter,
    persistedOperations,
    limits: {
      maxDepth: config.MAX_DEPTH,
      maxAliases: config.MAX_ALIASES,
      maxRootFields: config.MAX_ROOT_FIELDS,
      maxTokens: config.MAX_TOKENS,
      maxDirectives: config.MAX_DIRECTIVES,
      maxCost: config.MAX_COST,
    },
  });
  const sse = createSseHandler({ gateway, verifier, logger, maxBodyBytes: config.MAX_BODY_BYTES });
  const readiness: ReadinessChecks = Object.fromEntries(
    Object.entries(gateway.subgraphUrls).map(([name, url]) => [name, subgraphReady(url)]),
  );
  const database = config.DATABASE_URL ? await openDatabase(config.DATABASE_URL) : undefined;
  const pool = database?.pool;
  if (database) readiness['postgres'] = database.ready;
  if (streams) readiness['nats'] = streams.ready;
  collectProcessMetrics();
  const ingestEndpoint = createIngestEndpoint({
    yoga: gateway.yoga,
    logger,
    maxBodyBytes: config.INGEST_MAX_BODY_BYTES,
  });
  const reportDownload = createReportDownload({ verifier, pool, dataDir: config.DATA_DIR, logger });
  const dashboard = createDashboardAssets({ dir: config.DASHBOARD_DIR, logger });

  const secure = createHttpSecurity({
    corsOrigins: config.CORS_ORIGINS,
    production: config.NODE_ENV === 'production',
  });
  const http = createHttpTransport({
    yoga: gateway.yoga,
    maxBodyBytes: config.MAX_BODY_BYTES,
    maxUrlBytes: config.MAX_URL_BYTES,
  });

  let draining = false;
  const routes = withHealthRoutes(
    (req, res) => {
      const path = req.url?.split('?')[0];
      if (path === '/events') {
        ingestEndpoint(req, res);
        return;
      }
      if (isReportDownloadPath(path)) {
        reportDownload(req, res);
        return;
      }
      if (isDashboardPath(path)) {
        dashboard(req, res);
        return;
      }
      if (path === '/graphql' && wantsEventStream(req)) {
        void sse(req, res);
        return;
      }
      http(req, res);
    },
    readiness,
    () => draining,
  );
  const server = await listen(
    (req, res) => {
      // While draining, each answer closes its connection: keep-alive clients reconnect to another instance.
      if (draining) res.setHeader('connection', 'close');
      if (!secure(req, res)) routes(req, res);
    },
    config.GATEWAY_PORT,
    config.HOST,
  );
  const websocket = attachWebSocket(server, {
    gateway,
    verifier,
    logger,
    connectionInitTimeoutMs: config.WS_CONNECTION_INIT_TIMEOUT_MS,
    maxMessageBytes: config.WS_MAX_MESSAGE_BYTES,
    keepAliveMs: config.WS_KEEPALIVE_MS,
    maxSubscriptions: config.MAX_SUBSCRIPTIONS_PER_CONNECTION,
    corsOrigins: config.CORS_ORIGINS,
  });
  const stopWatching = config.SUPERGRAPH_POLL_MS
    ? watchSupergraph(gateway, config.SUPERGRAPH_PATH, config.SUPERGRAPH_POLL_MS, logger)
    : () => undefined;
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${config.HOST}:${port}/graphql`,
    async close() {
      draining = true;
      // Load balancers polling /readyz see 503 and stop routing here while this instance still serves.
      await new Promise((resolve) => setTimeout(resolve, config.SHUTDOWN_DRAIN_DELAY_MS));
      stopWatching();
      // Stop accepting; in-flight requests finish. Subscriptions end first (WebSocket 1001, SSE streams
      // end after what is queued), or their open responses would hold the server open until the bound.
      const closed = closeServer(server);
      await websocket.close();
      gateway.endSubscriptions();
      await closed;
      await gateway.close();
      await rateLimiter.close();
      feeds?.close();
      await streams?.broker.close();
      await pool?.end();
    },
  };
}

if (isMainModule(import.meta.url)) {
  const { values } = parseArgs({ options: { supergraph: { type: 'string' }, port: { type: 'string' } } });
  if (values.supergraph) process.env['SUPERGRAPH_PATH'] = values.supergraph;
  if (values.port) process.env['GATEWAY_PORT'] = values.port;
  await runService('gateway', [], startGateway);
}
