import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../../gateway/server.ts';
import { loadConfig, type Config } from '../../lib/config.ts';
import { signDevToken } from '../../lib/devKeys.ts';
import { createLogger } from '../../lib/logger.ts';
import type { RunningService } from '../../lib/service.ts';
import { startInsights } from '../../subgraphs/insights/server.ts';
import { startMetadata } from '../../subgraphs/metadata/server.ts';
import { startMetrics } from '../../subgraphs/metrics/server.ts';
import { startCalculator } from '../../subgraphs/metrics/calculator.ts';
import { startWriter } from '../../subgraphs/metrics/writer.ts';
import { startReports } from '../../subgraphs/reports/server.ts';
import { startNats, type ServerHandle } from '../../scripts/localServices.ts';
import { createTestDatabase } from './services.ts';

/** A GraphQL response body. */
export interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; path?: string[]; extensions?: { code?: string } }>;
}

/** The whole platform started in this process on free ports, over the suite's real services. */
export interface TestPlatform {
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
 * its own; with `workers`, also the event writer and the KPI calculator.
 */
export async function startTestPlatform(options: { workers?: boolean } = {}): Promise<TestPlatform> {
  const db = await createTestDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'pulsegraph-test-'));
  const nats = await startNats({ storeDir: join(dataDir, 'nats') });
  const natsUrl = nats.url;
  const base = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    AUTH_MODE: 'dev',
    DATA_DIR: dataDir,
    DATABASE_URL: db.appUrl,
    NATS_URL: natsUrl,
    METADATA_PORT: '0',
    METRICS_PORT: '0',
    REPORTS_PORT: '0',
    INSIGHTS_PORT: '0',
    GATEWAY_PORT: '0',
  };
  const config = loadConfig(base);
  const logger = createLogger('test', 'silent');
  const running: RunningService[] = [];
  const [metadata, metrics, reports, insights] = await Promise.all(
    [startMetadata, startMetrics, startReports, startInsights].map(async (start) => {
      const service = await start(config, logger);
      running.push(service);
      return service.url;
    }),
  );
  if (options.workers) {
    for (const start of [startWriter, startCalculator]) running.push(await start(config, logger));
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
  running.push(gateway);
  return {
    config,
    dataDir,
    gatewayUrl: gateway.url,
    subgraphUrls,
    adminUrl: db.adminUrl,
    nats,
    token: (tenant, roles) => signDevToken(dataDir, { tenant, roles }),
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
    async stop() {
      for (const service of running.reverse()) await service.close();
      await nats.stop();
      await db.drop();
    },
  };
}
