import { rm } from 'node:fs/promises';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { join } from 'node:path';
import { startGateway } from '../gateway/server.ts';
import { loadConfig, type Config } from '../lib/config.ts';
import { signDevToken } from '../lib/devKeys.ts';
import { createLogger } from '../lib/logger.ts';
import type { RunningService } from '../lib/service.ts';
import { startDetector } from '../subgraphs/insights/detector.ts';
import { startInsights } from '../subgraphs/insights/server.ts';
import { startMetadata } from '../subgraphs/metadata/server.ts';
import { startMetrics } from '../subgraphs/metrics/server.ts';
import { startCalculator } from '../subgraphs/metrics/calculator.ts';
import { startWriter } from '../subgraphs/metrics/writer.ts';
import { startReports } from '../subgraphs/reports/server.ts';
import { startNats, startRedis, type ServerHandle } from './localServices.ts';
import { createScratchDatabase } from './scratchDatabase.ts';
import { scratchDir } from './scratchDir.ts';

/** A GraphQL response body. */
export interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; path?: string[]; extensions?: { code?: string } }>;
}

/** The whole platform started in one process on free ports: for integration tests and benchmarks. */
export interface LocalPlatform {
  config: Config;
  dataDir: string;
  gatewayUrl: string;
  subgraphUrls: Record<'metadata' | 'metrics' | 'reports' | 'insights', string>;
  adminUrl: string;
  /** This platform's own nats-server: streams and durable consumers are not shared with other test files. */
  nats: ServerHandle;
  /** A dev token for the tenant with the given roles. */
  token(tenant: string, roles: string[]): Promise<string>;
  /** POSTs a GraphQL operation to url (the gateway by default). */
  graphql(
    query: string,
    options?: { token?: string; variables?: Record<string, unknown>; url?: string },
  ): Promise<{ status: number; body: GraphQLBody }>;
  stop(): Promise<void>;
}

/**
 * Starts the four subgraphs and the gateway in-process against a fresh database and a nats-server of
 * its own, and the given Redis or one of its own; with `workers`, also the event writer, the KPI calculator and the insights detector.
 */
export async function startLocalPlatform(options: LocalPlatformOptions): Promise<LocalPlatform> {
  // What has started, stopped in reverse by stop(), and also when starting fails halfway: a platform
  // that did not start leaves nothing running (processes, database, directory).
  const started: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    while (started.length) await started.pop()!();
  };
  try {
    return await boot(options, started, stop);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/** What startLocalPlatform starts. */
export interface LocalPlatformOptions {
  /** Superuser URL of the Postgres cluster to create the scratch database on. */
  clusterAdminUrl: string;
  appPassword: string;
  /** Redis to use (tests share the suite's); without it, the platform starts one of its own. */
  redisUrl?: string;
  workers?: boolean;
  production?: boolean;
  logLevel?: string;
  /** Further settings (lib/config.ts names) for every service, e.g. lower rate limits in a test. */
  env?: Record<string, string>;
  /** Gets the migrated database's application URL; answers DATABASE_READ_URL (a replica of it). */
  readReplica?: (appUrl: string) => Promise<string>;
}

async function boot(
  options: LocalPlatformOptions,
  started: Array<() => Promise<unknown>>,
  stop: () => Promise<void>,
): Promise<LocalPlatform> {
  const db = await createScratchDatabase(options.clusterAdminUrl, options.appPassword);
  started.push(() => db.drop());
  const readUrl = await options.readReplica?.(db.appUrl);
  const dataDir = await scratchDir('local');
  started.push(() => rm(dataDir, { recursive: true, force: true }));
  // Production: jwt mode with a PEM public key, as an operator would configure it; dev keys otherwise.
  const keys = options.production ? await generateKeyPair('ES256') : undefined;
  const auth = keys
    ? { NODE_ENV: 'production', AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: await exportSPKI(keys.publicKey) }
    : { NODE_ENV: 'test', AUTH_MODE: 'dev' };
  const nats = await startNats({ storeDir: join(dataDir, 'nats') });
  started.push(() => nats.stop());
  const natsUrl = nats.url;
  const redis = options.redisUrl ? undefined : await startRedis({ dir: join(dataDir, 'redis') });
  if (redis) started.push(() => redis.stop());
  const base = {
    ...auth,
    LOG_LEVEL: options.logLevel ?? 'silent',
    DATA_DIR: dataDir,
    DATABASE_URL: db.appUrl,
    ...(readUrl ? { DATABASE_READ_URL: readUrl } : {}),
    NATS_URL: natsUrl,
    REDIS_URL: redis?.url ?? options.redisUrl,
    METADATA_PORT: '0',
    METRICS_PORT: '0',
    REPORTS_PORT: '0',
    INSIGHTS_PORT: '0',
    GATEWAY_PORT: '0',
    // Our subgraphs all take batched requests (lib/subgraphServer.ts), as npm start configures it.
    SUBGRAPH_BATCHING: '*',
    ...options.env,
  };
  const config = loadConfig(base);
  const logger = createLogger('platform', options.logLevel ?? 'silent');
  const run = (service: RunningService) => {
    started.push(() => service.close());
    return service;
  };
  // Settled, not all: a subgraph still starting when another fails is stopped too.
  const subgraphs = await Promise.allSettled(
    [startMetadata, startMetrics, startReports, startInsights].map(async (start) =>
      run(await start(config, logger)),
    ),
  );
  const failed = subgraphs.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  const [metadata, metrics, reports, insights] = subgraphs.map(
    (result) => (result as PromiseFulfilledResult<RunningService>).value.url,
  );
  if (options.workers) {
    for (const start of [startWriter, startCalculator, startDetector]) run(await start(config, logger));
  }
  const subgraphUrls = { metadata: metadata!, metrics: metrics!, reports: reports!, insights: insights! };
  const gateway = await startGateway(
    loadConfig({
      ...base,
      SUBGRAPH_METADATA_URL: metadata,
      SUBGRAPH_METRICS_URL: metrics,
      SUBGRAPH_REPORTS_URL: reports,
      SUBGRAPH_INSIGHTS_URL: insights,
    }),
    logger,
  );
  run(gateway);
  return {
    config,
    dataDir,
    gatewayUrl: gateway.url,
    subgraphUrls,
    adminUrl: db.adminUrl,
    nats,
    token: (tenant, roles) =>
      keys
        ? new SignJWT({ tenant, roles })
            .setProtectedHeader({ alg: 'ES256' })
            .setIssuer('pulsegraph')
            .setAudience('pulsegraph')
            .setExpirationTime('10m')
            .sign(keys.privateKey)
        : signDevToken(dataDir, { tenant, roles }),
    async graphql(query, options = {}) {
      const response = await fetch(options.url ?? gateway.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        body: JSON.stringify({ query, variables: options.variables }),
      });
      return { status: response.status, body: (await response.json()) as GraphQLBody };
    },
    stop,
  };
}
