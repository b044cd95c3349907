// The platform as `npm start` runs it, one process per service (gateway, four subgraphs, writer,
// calculator, scheduler, report worker, detector), on a Postgres cluster the bench owns, with NATS and
// Redis started by scripts/start.ts on free ports. Rate limits are off: the bench measures throughput.
import { fileURLToPath } from 'node:url';
import { signDevToken } from '../../lib/devKeys.ts';
import { outputTail, spawnTied, stopChild } from '../../scripts/childProcesses.ts';
import { answers200, freePort, pollUntil } from '../../scripts/network.ts';
import { createScratchDatabase } from '../../scripts/scratchDatabase.ts';
import { RATE_LIMITS_OFF } from '../rateLimitsOff.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
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
  stop(): Promise<void>;
}

/** Starts scripts/start.ts on a scratch database of the cluster; resolves once the gateway is ready. */
export async function startPlatformProcesses(
  clusterAdminUrl: string,
  dataDir: string,
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
    async stop() {
      await stopChild(child, 'SIGINT', 30_000); // start.ts stops its services, then NATS and Redis
      await db.drop();
    },
  };
}
