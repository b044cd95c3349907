// `npm start`: the whole platform on one machine, as one readable log stream; Ctrl-C stops everything.
import type { ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { migrate } from '../db/migrate.ts';
import { ConfigError, loadConfig, type Config } from '../lib/config.ts';
import { ensureDashboardBuilt } from '../dashboard/build.ts';
import { GATEWAY_ENV, GATEWAY_NODE_FLAGS } from '../gateway/processSettings.ts';
import { COMPILE_CACHE_ENV } from '../lib/compileCache.ts';
import { ensureDevKeys } from '../lib/devKeys.ts';
import { liveChildren, spawnTied, stopChild } from './childProcesses.ts';
import { requireBinary, startNats, startPostgres, startRedis } from './localServices.ts';
import { createLogStream } from './logStream.ts';
import { answers200, isPortFree, pollUntil } from './network.ts';
import { readOrCreateSecret } from './secretFile.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const READY_TIMEOUT_MS = 60_000;
// Workers without a GraphQL port: the event writer and the KPI calculator of the metrics subgraph, the
// report scheduler and report worker of the reports subgraph, and the insight detector.
const WORKERS = [
  ['writer', 'subgraphs/metrics/writer.ts'],
  ['calculator', 'subgraphs/metrics/calculator.ts'],
  ['scheduler', 'subgraphs/reports/scheduler.ts'],
  ['report-worker', 'subgraphs/reports/worker.ts'],
  ['detector', 'subgraphs/insights/detector.ts'],
] as const;
const env: NodeJS.ProcessEnv = {
  ...process.env,
  NODE_ENV: process.env['NODE_ENV'] || 'development',
  AUTH_MODE: process.env['AUTH_MODE'] || 'dev',
  DATA_DIR: resolve(process.env['DATA_DIR'] || '.data'),
  LOG_LEVEL: process.env['LOG_LEVEL'] || 'info',
};
const config = loadStartConfig();
// Each worker serves /metrics and /healthz on its own port (METRICS_LISTEN_PORT): WORKER_METRICS_PORT and
// the four after it, in WORKERS' order; 0 lets each take a free port, which its "ready" line names.
const workerMetricsPort = optionalPort('WORKER_METRICS_PORT', { zero: true }) ?? 4010;
const workers = WORKERS.map(([name, file], index) => ({
  name,
  file,
  metricsPort: workerMetricsPort && workerMetricsPort + index,
}));
const localPorts = {
  PG_PORT: optionalPort('PG_PORT'),
  NATS_PORT: optionalPort('NATS_PORT'),
  REDIS_PORT: optionalPort('REDIS_PORT'),
};
const servicePorts = {
  GATEWAY_PORT: config.GATEWAY_PORT,
  METADATA_PORT: config.METADATA_PORT,
  METRICS_PORT: config.METRICS_PORT,
  REPORTS_PORT: config.REPORTS_PORT,
  INSIGHTS_PORT: config.INSIGHTS_PORT,
};
const logs = createLogStream({ colorize: process.stdout.isTTY === true });
const log = pino(
  { level: config.LOG_LEVEL, base: { service: 'start' } },
  { write: (line: string) => logs.write('start', line) },
);
const verbose = config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace';
// Postgres, NATS and Redis talk a lot while starting; show it only when asked, keep it for errors otherwise.
const infraLog = (service: string) => (verbose ? (line: string) => logs.write(service, line) : undefined);

const infrastructure: { name: string; stop: () => Promise<void> }[] = [];
const services: { name: string; child: ChildProcess }[] = [];
let shuttingDown = false;
let exiting: Promise<void> | undefined;
let starting: Promise<void> = Promise.resolve();

let signalsSeen = 0;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    signalsSeen += 1;
    if (signalsSeen === 1) {
      log.info(`${signal}: stopping every service (again to force)`);
      void shutdown(0);
      return;
    }
    log.warn(`${signal} again: killing every process now`);
    for (const child of liveChildren()) child.kill('SIGKILL');
  });
}

starting = main();
starting.catch((error: unknown) => {
  // During shutdown a failed step is a consequence of stopping, not news.
  if (!shuttingDown) {
    process.stderr.write(`pulsegraph: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  void shutdown(1);
});

async function main(): Promise<void> {
  const dataDir = env['DATA_DIR']!;
  await mkdir(dataDir, { recursive: true });
  // Check binaries before the slow Postgres start, so a missing one fails at once.
  if (!config.NATS_URL) requireBinary('nats-server');
  if (!config.REDIS_URL) requireBinary('redis-server');
  for (const [name, port] of Object.entries(servicePorts)) {
    if (!(await isPortFree(port)))
      throw new Error(`port ${port} (${name}) is in use: is Pulsegraph already running?`);
  }
  for (const { name, metricsPort: port } of workers) {
    if (port > 65535)
      throw new Error(`WORKER_METRICS_PORT ${workerMetricsPort} leaves no port for the ${name}`);
    if (port && !(await isPortFree(port)))
      throw new Error(
        `port ${port} (the ${name}'s /metrics, from WORKER_METRICS_PORT) is in use: is Pulsegraph already running? WORKER_METRICS_PORT=0 lets each worker take a free port`,
      );
  }

  // The dashboard is built (when older than its sources) while Postgres starts; the gateway serves it.
  const dashboard = buildDashboardIfStale();
  const database = await prepareDatabase(dataDir);
  if (shuttingDown) return;
  const natsUrl =
    config.NATS_URL ?? (await startLocal('nats', startNats, { storeDir: join(dataDir, 'nats') }));
  if (shuttingDown) return;
  const redisUrl =
    config.REDIS_URL ?? (await startLocal('redis', startRedis, { dir: join(dataDir, 'redis') }));
  if (shuttingDown) return;
  if (config.AUTH_MODE === 'dev') await ensureDevKeys(dataDir);

  const childEnv = { ...COMPILE_CACHE_ENV, ...env, ...database, NATS_URL: natsUrl, REDIS_URL: redisUrl };
  const subgraphs = [
    ['metadata', config.METADATA_PORT],
    ['metrics', config.METRICS_PORT],
    ['reports', config.REPORTS_PORT],
    ['insights', config.INSIGHTS_PORT],
  ] as const;
  for (const [name] of subgraphs) spawnService(name, `subgraphs/${name}/server.ts`, childEnv);
  for (const { name, file, metricsPort } of workers)
    spawnService(name, file, { ...childEnv, METRICS_LISTEN_PORT: String(metricsPort) });
  for (const [name, port] of subgraphs) await waitFor200(name, `http://127.0.0.1:${port}/healthz`);
  if (shuttingDown) return;
  await dashboard;
  // The supergraph routes to the default ports: the gateway follows the ports the subgraphs were given.
  const routing = Object.fromEntries(
    subgraphs.map(([name, port]) => [
      `SUBGRAPH_${name.toUpperCase()}_URL`,
      env[`SUBGRAPH_${name.toUpperCase()}_URL`] || `http://127.0.0.1:${port}/graphql`,
    ]),
  );
  spawnService(
    'gateway',
    'gateway/server.ts',
    // Every subgraph here takes batched requests (lib/subgraphServer.ts), unless told otherwise.
    { ...childEnv, ...GATEWAY_ENV, SUBGRAPH_BATCHING: env['SUBGRAPH_BATCHING'] ?? '*', ...routing },
    GATEWAY_NODE_FLAGS,
  );
  await waitFor200('gateway', `http://127.0.0.1:${config.GATEWAY_PORT}/readyz`);
  if (shuttingDown) return;
  logs.write(
    'start',
    `Pulsegraph is up: http://127.0.0.1:${config.GATEWAY_PORT}/graphql  (token: npm run token -- --tenant acme --roles admin)`,
  );
  logs.write(
    'start',
    `Dashboard: http://127.0.0.1:${config.GATEWAY_PORT}/?token=<npm run -s token -- --tenant acme --roles viewer>`,
  );
}

/** Builds the dashboard into DASHBOARD_DIR when it is stale; if that fails, the API starts without it. */
async function buildDashboardIfStale(): Promise<void> {
  const outDir = resolve(root, config.DASHBOARD_DIR);
  const started = Date.now();
  try {
    if (await ensureDashboardBuilt(outDir)) log.info(`built the dashboard in ${Date.now() - started} ms`);
  } catch (error) {
    log.error({ err: error }, 'the dashboard could not be built; the gateway serves the API without it');
  }
}

/** The database settings the services get: the given database, or an embedded cluster under dataDir. */
async function prepareDatabase(dataDir: string): Promise<Record<string, string>> {
  if (config.DATABASE_URL) {
    const adminUrl = config.DATABASE_ADMIN_URL ?? config.DATABASE_URL;
    await migrate({ adminUrl, appPassword: config.DATABASE_APP_PASSWORD, logger: log });
    return { DATABASE_URL: config.DATABASE_URL };
  }
  const postgres = await startPostgres({
    dataDir: join(dataDir, 'pg'),
    port: localPorts.PG_PORT,
    persistent: true,
    onLog: infraLog('postgres'),
  });
  infrastructure.push({ name: 'postgres', stop: () => postgres.stop() });
  log.info(`postgres is listening on port ${postgres.port} (data in ${join(dataDir, 'pg')})`);
  const appPassword = await readOrCreateSecret(join(dataDir, 'pg-app-password'));
  await migrate({ adminUrl: postgres.adminUrl, appPassword, logger: log });
  return {
    DATABASE_URL: `postgres://pulsegraph_app:${encodeURIComponent(appPassword)}@127.0.0.1:${postgres.port}/pulsegraph`,
    DATABASE_ADMIN_URL: postgres.adminUrl,
    DATABASE_APP_PASSWORD: appPassword,
  };
}

/** Starts a local NATS or Redis, remembers how to stop it, and returns its URL. */
async function startLocal<O>(
  name: 'nats' | 'redis',
  start: (
    options: O & { port?: number; onLog?: (line: string) => void },
  ) => Promise<{ url: string; stop(): Promise<void> }>,
  options: O,
): Promise<string> {
  const server = await start({
    ...options,
    port: localPorts[name === 'nats' ? 'NATS_PORT' : 'REDIS_PORT'],
    onLog: infraLog(name),
  });
  infrastructure.push({ name, stop: () => server.stop() });
  log.info(`${name} is listening at ${server.url}`);
  return server.url;
}

function spawnService(
  name: string,
  file: string,
  childEnv: NodeJS.ProcessEnv,
  nodeFlags: readonly string[] = [],
): void {
  const child = spawnTied(process.execPath, [...nodeFlags, join(root, file)], {
    env: childEnv,
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.stdout) logs.pipe(name, child.stdout);
  if (child.stderr) logs.pipe(name, child.stderr);
  services.push({ name, child });
  log.info(`started ${name} (pid ${child.pid})`);
  child.once('error', (error) => {
    log.error({ err: error }, `${name} could not be started`);
    void shutdown(1);
  });
  child.once('exit', (code, signal) => {
    if (shuttingDown) return;
    log.error(`${name} exited unexpectedly (code ${code}, signal ${signal}); stopping everything`);
    void shutdown(1);
  });
}

async function waitFor200(name: string, url: string): Promise<void> {
  const ok = await pollUntil(() => answers200(url), {
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: 250,
    stop: () => shuttingDown,
  });
  if (!ok && !shuttingDown)
    throw new Error(`${name} did not answer 200 on ${url} within ${READY_TIMEOUT_MS / 1000} s`);
}

/** Stops the gateway, then the subgraphs, then Redis, NATS and Postgres; exits with code. */
function shutdown(code: number): Promise<void> {
  shuttingDown = true;
  exiting ??= (async () => {
    await starting.catch(() => undefined);
    const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_MS;
    const stopAll = (list: typeof services) =>
      Promise.all(list.map(({ child }) => stopChild(child, 'SIGTERM', Math.max(0, deadline - Date.now()))));
    // The gateway first: requests it is still draining need the subgraphs.
    await stopAll(services.filter((s) => s.name === 'gateway'));
    await stopAll(services.filter((s) => s.name !== 'gateway'));
    for (const { name, stop } of infrastructure.reverse()) {
      await stop().catch((error: unknown) => log.error({ err: error }, `could not stop ${name}`));
    }
    log.info('everything stopped');
    process.exit(code);
  })();
  return exiting;
}

function loadStartConfig(): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`pulsegraph: ${error.message}\n`);
    process.exit(1);
  }
}

function optionalPort(name: string, options: { zero?: boolean } = {}): number | undefined {
  const value = env[name];
  if (!value) return undefined;
  const port = Number(value);
  if (Number.isInteger(port) && port >= (options.zero ? 0 : 1) && port < 65536) return port;
  process.stderr.write(
    `pulsegraph: invalid setting ${name}: expected a port number (got ${JSON.stringify(value)})\n`,
  );
  return process.exit(1);
}
