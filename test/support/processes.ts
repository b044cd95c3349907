// Services started as their own OS processes (`node gateway/server.ts`, a worker), as npm start and the
// containers run them, over a test platform's Postgres, NATS and Redis: for signals, reloads and scale-out.
import type { ChildProcess } from 'node:child_process';
import { spawnTied, stopChild, waitForExit, type ExitStatus } from '../../scripts/childProcesses.ts';
import { freePort } from '../../scripts/network.ts';
import type { TestPlatform } from './platform.ts';

/** A service process and how it ended. */
export interface ServiceProcess {
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<ExitStatus>;
  /** Everything it wrote to stdout and stderr so far (also passed through to ours). */
  output(): string;
  /** SIGKILLs the process if it still runs, and waits for it. */
  kill(): Promise<void>;
}

/** A gateway process and its GraphQL URL. */
export interface GatewayProcess extends ServiceProcess {
  url: string;
}

/** Starts `node <script>` with the platform's settings plus `env`. */
export function startServiceProcess(
  platform: TestPlatform,
  script: string,
  env: Record<string, string> = {},
): ServiceProcess {
  const child = spawnTied(process.execPath, [script], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      AUTH_MODE: 'dev',
      DATA_DIR: platform.dataDir,
      DATABASE_URL: platform.config.DATABASE_URL,
      NATS_URL: platform.nats.url,
      REDIS_URL: platform.config.REDIS_URL,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    process.stdout.write(chunk);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    process.stderr.write(chunk);
  });
  const exited = waitForExit(child);
  return {
    child,
    exited,
    output: () => output,
    kill: async () => void (await stopChild(child, 'SIGKILL')),
  };
}

/** Starts a gateway process routed to the platform's subgraphs (or `env`'s) and waits until /readyz is 200. */
export async function startGatewayProcess(
  platform: TestPlatform,
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  const port = env['GATEWAY_PORT'] ?? String(await freePort());
  const service = startServiceProcess(platform, 'gateway/server.ts', {
    GATEWAY_PORT: port,
    SUPERGRAPH_POLL_MS: '0',
    SUBGRAPH_METADATA_URL: platform.subgraphUrls.metadata,
    SUBGRAPH_METRICS_URL: platform.subgraphUrls.metrics,
    SUBGRAPH_REPORTS_URL: platform.subgraphUrls.reports,
    SUBGRAPH_INSIGHTS_URL: platform.subgraphUrls.insights,
    ...env,
  });
  const url = `http://127.0.0.1:${port}/graphql`;
  await untilReady(service, url);
  return { ...service, url };
}

/** Waits until the service at `graphqlUrl` answers /readyz with 200; kills it and throws if it never does. */
export async function untilReady(service: ServiceProcess, graphqlUrl: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await fetch(new URL('/readyz', graphqlUrl))
      .then((r) => r.ok)
      .catch(() => false);
    if (ready) return;
    if (service.child.exitCode !== null || Date.now() > deadline) {
      await service.kill();
      throw new Error(`${service.child.spawnargs.at(-1)} at ${graphqlUrl} did not become ready`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
