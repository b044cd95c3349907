// The one place that starts local infrastructure (nats-server, redis-server, embedded Postgres),
// shared by `npm start` and the test suite's global setup.
import type { ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { findOnPath, hasExited, outputTail, spawnTied, stopChild, waitForExit } from './childProcesses.ts';
import { freePort, pollUntil, readFirstLine } from './network.ts';

export { freePort } from './network.ts';
export { startPostgres, startStandby, type PostgresHandle, type PostgresOptions } from './localPostgres.ts';

/** A local server process we started, restartable on the same port and data. */
export interface ServerHandle {
  url: string;
  port: number;
  /** The pid of the current process; undefined before the first start or after a failed restart. */
  readonly pid: number | undefined;
  /** SIGTERM and wait for exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Sends signal (default SIGKILL) and waits for the process to exit: a crash, for fault tests. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port and data (stopping it first if it still runs). */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const urlSettings: Record<string, string> = { 'nats-server': 'NATS_URL', 'redis-server': 'REDIS_URL' };

/** The absolute path of binary on PATH; throws one line saying how to get it otherwise. */
export function requireBinary(name: string): string {
  const path = findOnPath(name);
  if (path) return path;
  const setting = urlSettings[name];
  const alternative = setting ? `set ${setting} to an existing server` : 'put it on PATH';
  throw new Error(
    `${name} not found on PATH: install it with "apt-get install nats-server redis-server", ${alternative}, or use docker-compose`,
  );
}

/** Starts `nats-server -js` on 127.0.0.1, ready once it greets clients with JetStream enabled. */
export async function startNats(options: {
  storeDir: string;
  port?: number;
  onLog?: (line: string) => void;
}): Promise<ServerHandle> {
  const port = options.port ?? (await freePort());
  const storeDir = resolve(options.storeDir);
  await mkdir(storeDir, { recursive: true });
  return superviseServer({
    binary: 'nats-server',
    args: ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir],
    url: `nats://127.0.0.1:${port}`,
    port,
    // The INFO greeting is sent only once the client listener is up, which follows JetStream's start.
    isReady: async () => {
      const info = await readFirstLine(port);
      return info?.startsWith('INFO ') === true && info.includes('"jetstream":true');
    },
    onLog: options.onLog,
  });
}

/** Starts redis-server on 127.0.0.1 without persistence, ready once it answers PING. */
export async function startRedis(options: {
  dir: string;
  port?: number;
  onLog?: (line: string) => void;
}): Promise<ServerHandle> {
  const port = options.port ?? (await freePort());
  const dir = resolve(options.dir);
  await mkdir(dir, { recursive: true });
  return superviseServer({
    binary: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    url: `redis://127.0.0.1:${port}`,
    port,
    isReady: async () => (await readFirstLine(port, 'PING\r\n')) === '+PONG',
    onLog: options.onLog,
  });
}

interface ServerSpec {
  binary: string;
  args: string[];
  url: string;
  port: number;
  isReady: () => Promise<boolean>;
  onLog: ((line: string) => void) | undefined;
}

async function superviseServer(spec: ServerSpec): Promise<ServerHandle> {
  const path = requireBinary(spec.binary);
  let child: ChildProcess | undefined;

  const launch = async () => {
    const started = spawnTied(path, spec.args, { stdio: ['ignore', 'pipe', 'pipe'], stopSignal: 'SIGTERM' });
    child = started;
    const tail = outputTail(started, spec.onLog);
    let spawnError: Error | undefined;
    started.once('error', (error) => (spawnError = error));
    const ready = await pollUntil(spec.isReady, {
      timeoutMs: READY_TIMEOUT_MS,
      stop: () => hasExited(started) || spawnError !== undefined,
    });
    if (ready) return;
    if (spawnError) throw new Error(`${spec.binary} could not be started: ${spawnError.message}`);
    const status = hasExited(started) ? await waitForExit(started) : undefined;
    await stopChild(started);
    const why = status
      ? `exited (code ${status.code}, signal ${status.signal}) before it was ready`
      : `did not become ready within ${READY_TIMEOUT_MS / 1000} s`;
    throw new Error(`${spec.binary} on port ${spec.port} ${why}:\n${tail()}`);
  };

  await launch();
  return {
    url: spec.url,
    port: spec.port,
    get pid() {
      return child && !hasExited(child) ? child.pid : undefined;
    },
    async stop() {
      if (child) await stopChild(child, 'SIGTERM', 5000);
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (!child || hasExited(child)) return;
      const exited = waitForExit(child);
      child.kill(signal);
      await exited;
    },
    async restart() {
      if (child) await stopChild(child, 'SIGTERM', 5000);
      await launch();
    },
  };
}
