// The servers the fan-out bench compares, each a process of its own on core 0: the real gateway
// (gateway/server.ts against the local platform's subgraphs and NATS), a bare `ws` broadcaster and
// graphql-ws's own server.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GATEWAY_ENV, GATEWAY_NODE_FLAGS } from '../../gateway/processSettings.ts';
import { COMPILE_CACHE_ENV } from '../../lib/compileCache.ts';
import { firstLine, outputTail, spawnTied, stopChild, waitForExit } from '../../scripts/childProcesses.ts';
import type { LocalPlatform } from '../../scripts/localPlatform.ts';
import { answers200, freePort, pollUntil } from '../../scripts/network.ts';
import { onCore } from '../cores.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A server process under test. */
export interface ServerProcess {
  pid: number;
  /** ws:// URL clients connect to. */
  wsUrl: string;
  /** Lines it wrote (the gateway runs with LOG_LEVEL=warn: its warnings and errors), the latest 200. */
  logged: string[];
  stop(): Promise<void>;
}

function start(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; logged: string[] } {
  const [command, commandArgs] = onCore(0, process.execPath, args);
  const child = spawnTied(command, commandArgs, { cwd: ROOT, env: { ...process.env, ...env } });
  const logged: string[] = [];
  outputTail(child, (line) => {
    logged.push(line);
    if (logged.length > 200) logged.shift();
  });
  return { child, logged };
}

/**
 * Starts gateway/server.ts (with the Node flags and environment it ships with) on core 0 against the
 * platform's subgraphs and NATS; resolves once ready.
 */
export async function startGatewayProcess(platform: LocalPlatform): Promise<ServerProcess> {
  const port = await freePort();
  const { config, subgraphUrls } = platform;
  const { child, logged } = start([...GATEWAY_NODE_FLAGS, 'gateway/server.ts'], {
    ...COMPILE_CACHE_ENV,
    ...GATEWAY_ENV,
    NODE_ENV: config.NODE_ENV,
    AUTH_MODE: 'dev', // dev tokens signed with the key in DATA_DIR, as platform.token() signs them
    DATA_DIR: platform.dataDir,
    NATS_URL: config.NATS_URL,
    DATABASE_URL: config.DATABASE_URL,
    SUBGRAPH_METADATA_URL: subgraphUrls.metadata,
    SUBGRAPH_METRICS_URL: subgraphUrls.metrics,
    SUBGRAPH_REPORTS_URL: subgraphUrls.reports,
    SUBGRAPH_INSIGHTS_URL: subgraphUrls.insights,
    HOST: '127.0.0.1',
    GATEWAY_PORT: String(port),
    LOG_LEVEL: 'warn',
    // Every subscriber is the same tenant and token: 10,000 starts a minute are the bench, not abuse.
    RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE: '0',
    RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE_PER_TOKEN: '0',
  });
  const base = `http://127.0.0.1:${port}`;
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const ready = await pollUntil(() => answers200(`${base}/readyz`), { timeoutMs: 60_000, stop: exited });
  if (!ready) {
    await stopChild(child);
    throw new Error(`the gateway process did not become ready:\n${logged.join('\n')}`);
  }
  return {
    pid: child.pid!,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    logged,
    stop: async () => void (await stopChild(child, 'SIGTERM', 15_000)),
  };
}

/** The gateway's Prometheus counters and gauges, summed over labels, by metric name. */
export async function readMetrics(wsUrl: string): Promise<Map<string, number>> {
  const response = await fetch(new URL('/metrics', wsUrl.replace(/^ws/, 'http')));
  const metrics = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (match) metrics.set(match[1]!, (metrics.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return metrics;
}

/** The gateway's metrics once it has closed every client socket (or after timeoutMs), to look for leaks. */
export async function readMetricsWhenIdle(wsUrl: string, timeoutMs = 10_000): Promise<Map<string, number>> {
  const deadline = Date.now() + timeoutMs;
  let metrics = await readMetrics(wsUrl);
  while ((metrics.get('pulsegraph_websockets_open') ?? 0) > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    metrics = await readMetrics(wsUrl);
  }
  return metrics;
}

/** A server on core 0 fed on stdin: the bare `ws` broadcaster, or the graphql-ws peer. */
export interface StdinServer extends ServerProcess {
  /** Sends one line (of JSON) to the server: a frame to broadcast, or a value to publish. */
  send(line: string): void;
}

/** Where each stdin-fed server's entry point is. */
const STDIN_SERVERS = {
  // A bare `ws` server sending each line, serialized once, to every client.
  raw: 'bench/fanout/rawBroadcast.ts',
  // graphql-ws's server executing each value once per subscriber.
  'graphql-ws': 'bench/fanout/graphqlWsPeer.ts',
} as const;

/** Starts a stdin-fed server; resolves once it listens. */
export async function startStdinServer(kind: keyof typeof STDIN_SERVERS): Promise<StdinServer> {
  const { child, logged } = start([STDIN_SERVERS[kind]], {});
  const port = await firstLine(
    child,
    kind,
    () => logged.join('\n'),
    (line) => {
      const found = /listening (\d+)/.exec(line)?.[1];
      return found ? Number(found) : undefined;
    },
  );
  return {
    pid: child.pid!,
    wsUrl: `ws://127.0.0.1:${port}`,
    logged,
    send: (line) => void child.stdin!.write(`${line}\n`),
    async stop() {
      child.stdin!.end(); // it exits when stdin ends; a signal only if it does not
      const timer = setTimeout(() => void stopChild(child), 5_000);
      await waitForExit(child);
      clearTimeout(timer);
    },
  };
}
