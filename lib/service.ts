import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfigOrExit, type Config, type RequiredSetting } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { collectProcessMetrics, metricsListener, serveMetrics } from './metrics.ts';
import { startTelemetry, stopTelemetry } from './telemetry.ts';

/** A running process component that can be closed on shutdown. */
export interface Closable {
  close(): Promise<void>;
}

/** Probes that answer /readyz: each returns true when its dependency answers. */
export type ReadinessChecks = Record<string, () => Promise<boolean>>;

/** Runs every readiness probe concurrently; ready only when all pass. */
export async function checkReadiness(
  checks: ReadinessChecks,
): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, probe]) => [name, await probe().catch(() => false)] as const),
  );
  return { ready: entries.every(([, ok]) => ok), checks: Object.fromEntries(entries) };
}

/**
 * Wraps a request handler with /healthz (process up), /readyz (dependencies answer, not draining) and
 * /metrics (the process's Prometheus registry).
 */
export function withHealthRoutes(
  handler: RequestListener,
  checks: ReadinessChecks,
  isDraining: () => boolean,
) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (serveMetrics(req, res)) return;
    const path = req.url?.split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (req.method === 'GET' && path === '/readyz') {
      void checkReadiness(checks).then(({ ready, checks: results }) => {
        const ok = ready && !isDraining();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            status: ok ? 'ready' : isDraining() ? 'draining' : 'degraded',
            checks: results,
          }),
        );
      });
      return;
    }
    handler(req, res);
  };
}

/** Starts an HTTP server and resolves once it listens. */
export async function listen(handler: RequestListener, port: number, host: string): Promise<Server> {
  const server = createServer({ keepAliveTimeout: 65_000 }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** Closes an HTTP server: stops accepting, lets in-flight requests finish, then drops idle keep-alive sockets. */
export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** A started service: where it listens and how to stop it. */
export interface RunningService extends Closable {
  url: string;
}

/** Whether the module with this import.meta.url is the process's entry point. */
export function isMainModule(moduleUrl: string): boolean {
  return process.argv[1] === fileURLToPath(moduleUrl);
}

/** Entry point of a service process: config, logger, start, and shutdown on signals; a start failure exits 1. */
export async function runService(
  name: string,
  required: RequiredSetting[],
  start: (config: Config, logger: Logger) => Promise<RunningService>,
): Promise<void> {
  const config = loadConfigOrExit(required);
  const logger = createLogger(name, config.LOG_LEVEL, config.LOG_FORMAT);
  await startTelemetry(name, config.OTEL_EXPORTER_OTLP_ENDPOINT);
  collectProcessMetrics();
  try {
    const service = await start(config, logger);
    // Workers have no HTTP port of their own: METRICS_LISTEN_PORT gives them one for /metrics and /healthz.
    const metrics =
      config.METRICS_LISTEN_PORT === undefined
        ? undefined
        : await listen(metricsListener, config.METRICS_LISTEN_PORT, config.HOST);
    const metricsPort = (metrics?.address() as AddressInfo | null)?.port;
    logger.info(
      {
        url: service.url,
        ...(metricsPort ? { metrics: `http://${config.HOST}:${metricsPort}/metrics` } : {}),
      },
      `${name} ready`,
    );
    onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [
      service,
      ...(metrics ? [{ close: () => closeServer(metrics) }] : []),
      { close: stopTelemetry },
    ]);
  } catch (error) {
    // A setting found wrong only at start (a file it names, say) ends like a malformed one: one line.
    if (error instanceof ConfigError) process.stderr.write(`pulsegraph: ${error.message}\n`);
    else logger.fatal({ err: error }, `${name} failed to start: ${(error as Error).message}`);
    process.exit(1);
  }
}

/** Stops the components in order on SIGTERM/SIGINT, within timeoutMs; exits 0, or 1 if the bound is hit. */
export function onShutdown(
  logger: Logger,
  timeoutMs: number,
  components: Closable[],
  beforeClose?: () => void,
): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    beforeClose?.();
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    void (async () => {
      for (const component of components) {
        await component.close().catch((error: unknown) => logger.warn({ err: error }, 'close failed'));
      }
      logger.info('stopped');
      process.exit(0);
    })();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
