// The platform as `npm start` runs it, one process per service (gateway, four subgraphs, writer,
// calculator, scheduler, report worker, detector), on a Postgres cluster of its own under a scratch
// directory, with NATS and Redis started by scripts/start.ts on free ports. Rate limits are off: the
// benches measure throughput. (bench/platform.ts runs the services in the bench's own process instead.)
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signDevToken } from '../lib/devKeys.ts';
import { outputTail, spawnTied, stopChild } from '../scripts/childProcesses.ts';
import { startPostgres } from '../scripts/localServices.ts';
import { answers200, freePort, pollUntil } from '../scripts/network.ts';
import { createScratchDatabase } from '../scripts/scratchDatabase.ts';
import { RATE_LIMITS_OFF } from './rateLimitsOff.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const APP_PASSWORD = 'bench-app';

/** The running platform, as the bench sees it. */
export interface PlatformProcesses {
  gatewayUrl: string;
  natsUrl: string;
  /** Superuser URL of the platform's database: for counting what was stored. */
  adminUrl: string;
  /** The application role's URL (row-level security applies), as the services connect. */
  appUrl: string;
  token(tenant: string, roles: string[]): Promise<string>;
  /** POSTs an operation to the gateway with the token; its data, or a throw on any error. */
  graphql(token: string, query: string, variables?: object): Promise<unknown>;
  /** Stops the platform and its Postgres, and removes their directory. */
  stop(): Promise<void>;
}

/**
 * Starts Postgres under a scratch directory (`name` in its name) and scripts/start.ts on a database of it;
 * resolves once the gateway is ready.
 */
export async function startPlatformProcesses(name: string): Promise<PlatformProcesses> {
  const dataDir = await scratchDir(`${name}-bench`);
  await chmod(dataDir, 0o755); // Postgres runs as its own user: it must reach its data directory here
  const postgres = await startPostgres({ dataDir: join(dataDir, 'pg'), persistent: false });
  const removeAll = async () => {
    await postgres.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    return await startOn(postgres.adminUrl, dataDir, removeAll);
  } catch (error) {
    await removeAll();
    throw error;
  }
}

async function startOn(
  clusterAdminUrl: string,
  dataDir: string,
  removeAll: () => Promise<void>,
): Promise<PlatformProcesses> {
  const db = await createScratchDatabase(clusterAdminUrl, APP_PASSWORD);
  const ports = Object.fromEntries(
    await Promise.all(
      ['GATEWAY', 'METADATA', 'METRICS', 'REPORTS', 'INSIGHTS', 'NATS', 'REDIS'].map(
        async (name) => [`${name}_PORT`, String(await freePort())] as const,
      ),
    ),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...ports,
    NODE_ENV: 'production',
    AUTH_MODE: 'dev',
    ALLOW_DEV_AUTH_IN_PRODUCTION: 'true', // a bench of the production configuration, with dev-signed tokens
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'warn',
    DATABASE_URL: db.appUrl,
    DATABASE_ADMIN_URL: db.adminUrl,
    DATABASE_APP_PASSWORD: APP_PASSWORD,
    ...RATE_LIMITS_OFF,
    OTEL_EXPORTER_OTLP_ENDPOINT: '',
    WORKER_METRICS_PORT: '0', // not npm start's 4010 to 4014: those may be taken by a platform running here
  };
  const child = spawnTied(process.execPath, ['scripts/start.ts'], { cwd: ROOT, env });
  const tail = outputTail(child, undefined, 100);
  const gatewayUrl = `http://127.0.0.1:${ports['GATEWAY_PORT']}`;
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const ready = await pollUntil(() => answers200(`${gatewayUrl}/readyz`), {
    timeoutMs: 180_000,
    stop: exited,
  });
  if (!ready) {
    await stopChild(child);
    await db.drop();
    throw new Error(`npm start did not become ready:\n${tail()}`);
  }
  return {
    gatewayUrl,
    natsUrl: `nats://127.0.0.1:${ports['NATS_PORT']}`,
    adminUrl: db.adminUrl,
    appUrl: db.appUrl,
    token: (tenant, roles) => signDevToken(dataDir, { tenant, roles }),
    async graphql(token, query, variables) {
      const response = await fetch(new URL('/graphql', gatewayUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data?: unknown; errors?: unknown[] };
      if (!response.ok || body.errors) throw new Error(`${response.status}: ${JSON.stringify(body)}`);
      return body.data;
    },
    async stop() {
      await stopChild(child, 'SIGINT', 30_000); // start.ts stops its services, then NATS and Redis
      await db.drop();
      await removeAll();
    },
  };
}
