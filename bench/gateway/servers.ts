// The processes of the gateway bench: the subgraphs (one process, on the load core) and each gateway under
// test (one process, one worker, on the gateway core), over a supergraph composed from the subgraphs.
import { composeServices } from '@apollo/composition';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'graphql';
import { firstLine, outputTail, spawnTied, stopChild } from '../../scripts/childProcesses.ts';
import { freePort } from '../../scripts/network.ts';
import { GATEWAY_ENV, GATEWAY_NODE_FLAGS } from '../../gateway/processSettings.ts';
import { COMPILE_CACHE_ENV } from '../../lib/compileCache.ts';
import { onCore } from '../cores.ts';
import { RATE_LIMITS_OFF } from '../rateLimitsOff.ts';
import { benchSubgraphs } from './subgraphs.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The gateways compared, ours first. */
export const PEERS = [
  'pulsegraph',
  'pulsegraph-nodedupe',
  'apollo-server',
  'apollo-yoga',
  'hive-gateway',
  'mercurius',
] as const;
/** One of the gateways compared. */
export type Peer = (typeof PEERS)[number];

/** A process under test or serving the test. */
export interface BenchProcess {
  pid: number;
  /** Its GraphQL endpoint. */
  url: string;
  /** The last lines it wrote to stdout and stderr. */
  output(): string;
  stop(): Promise<void>;
}

/** The hand-written gateway for the bench query alone that gives the CPU floor (peers/floor.ts). */
export const FLOOR = 'floor';

/** Where each peer's entry point is, and what it needs besides a port. */
const ENTRY: Record<Peer | typeof FLOOR, string> = {
  floor: 'bench/gateway/peers/floor.ts',
  pulsegraph: 'gateway/server.ts',
  // Ours with SUBGRAPH_DEDUPE=false: every request sends all of its plan's fetches.
  'pulsegraph-nodedupe': 'gateway/server.ts',
  'apollo-server': 'bench/gateway/peers/apolloServer.ts',
  'apollo-yoga': 'bench/gateway/peers/apolloYoga.ts',
  'hive-gateway': 'bench/gateway/peers/hiveGateway.ts',
  mercurius: 'bench/gateway/peers/mercuriusGateway.ts',
};

/** Starts the four subgraphs in one process on core 1; resolves with their URLs. */
export async function startSubgraphs(): Promise<BenchProcess & { urls: Record<string, string> }> {
  const [command, args] = onCore(1, process.execPath, ['bench/gateway/subgraphServer.ts']);
  const child = spawnTied(command, args, { cwd: ROOT });
  const tail = outputTail(child);
  const urls = await firstLine(child, 'the bench subgraphs', tail, (line) =>
    line.startsWith('{') ? (JSON.parse(line) as Record<string, string>) : undefined,
  );
  return {
    pid: child.pid!,
    url: urls['accounts']!,
    urls,
    output: tail,
    stop: async () => void (await stopChild(child)),
  };
}

/** Operations the subgraphs have answered so far. */
export async function subgraphFetches(urls: Record<string, string>): Promise<number> {
  return Number(await (await fetch(new URL('/fetches', urls['accounts']))).text());
}

/** HTTP requests that carried those operations (fewer when a gateway batches them). */
export async function subgraphExchanges(urls: Record<string, string>): Promise<number> {
  return Number(await (await fetch(new URL('/exchanges', urls['accounts']))).text());
}

/** The operations the subgraphs receive while `act` runs (run one request at a time), in order. */
export async function recordFetches(
  urls: Record<string, string>,
  act: () => Promise<unknown>,
): Promise<Array<{ url: string; body: string }>> {
  await fetch(new URL('/record', urls['accounts']));
  await act();
  return (await (await fetch(new URL('/recorded', urls['accounts']))).json()) as Array<{
    url: string;
    body: string;
  }>;
}

/** Composes the subgraphs (Federation 1 SDL, upgraded by composition) into a supergraph file in dir. */
export async function writeSupergraph(dir: string, urls: Record<string, string>): Promise<string> {
  const result = composeServices(
    benchSubgraphs.map((s) => ({ name: s.name, url: urls[s.name]!, typeDefs: parse(s.sdl) })),
  );
  if (result.errors) throw new Error(`composition failed: ${result.errors.map((e) => e.message).join('; ')}`);
  const file = join(dir, 'bench-supergraph.graphql');
  await writeFile(file, result.supergraphSdl);
  return file;
}

/** Options of startPeer. */
export interface PeerOptions {
  supergraphFile: string;
  subgraphUrls: Record<string, string>;
  /** DATA_DIR of our gateway (its dev signing key). */
  dataDir: string;
  /** Extra node flags (e.g. --cpu-prof) for our gateway. */
  nodeFlags?: string[];
  /** Extra environment of every peer (e.g. BENCH_FORWARD_HEADERS), over the rest. */
  env?: NodeJS.ProcessEnv;
}

/** Entries started once already by this process: their compiled form is in the compile cache. */
const warmEntries = new Set<string>();
/** Preload of a throwaway start: exits at SIGTERM through process.exit, which writes the compile cache. */
const WARMUP_PRELOAD = pathToFileURL(join(ROOT, 'bench/gateway/compileCacheWarmup.ts')).href;

/**
 * Starts one gateway (or the floor, with BENCH_FLOOR in options.env) on core 0; resolves once it answers.
 * The first start of each entry is a throwaway one that fills Node's compile cache (lib/compileCache.ts),
 * so that every peer is measured as it runs after its first start, from a clean clone as well.
 */
export async function startPeer(peer: Peer | typeof FLOOR, options: PeerOptions): Promise<BenchProcess> {
  if (!warmEntries.has(ENTRY[peer])) {
    // With the shipped flags only: a flag the bench adds (--cpu-prof) would write a profile of this start.
    await (await launchPeer(peer, { ...options, nodeFlags: [] }, ['--import', WARMUP_PRELOAD])).stop();
    warmEntries.add(ENTRY[peer]);
  }
  return launchPeer(peer, options, []);
}

async function launchPeer(
  peer: Peer | typeof FLOOR,
  options: PeerOptions,
  preload: string[],
): Promise<BenchProcess> {
  const port = await freePort();
  // Ours with the flags and environment it ships with (gateway/processSettings.ts), and any flags the
  // bench adds (e.g. --cpu-prof).
  const ours = peer === 'pulsegraph' || peer === 'pulsegraph-nodedupe';
  const flags = ours
    ? [...GATEWAY_NODE_FLAGS, ...(peer === 'pulsegraph' ? (options.nodeFlags ?? []) : [])]
    : [];
  const [command, args] = onCore(0, process.execPath, [
    ...flags,
    ...preload,
    ENTRY[peer],
    '--port',
    String(port),
  ]);
  // Every peer with the compile cache: their entries here are TypeScript files of the bench, and stripping
  // their types (lib/compileCache.ts) is a cost of the bench, not of the gateway they run.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...COMPILE_CACHE_ENV,
    NODE_ENV: 'production',
    BENCH_SUPERGRAPH: options.supergraphFile,
    BENCH_SUBGRAPHS: JSON.stringify(options.subgraphUrls),
    BENCH_PORT: String(port),
  };
  if (peer.startsWith('pulsegraph')) Object.assign(env, GATEWAY_ENV, ourGatewayEnv(options, port));
  if (peer === 'pulsegraph-nodedupe') env['SUBGRAPH_DEDUPE'] = 'false';
  Object.assign(env, options.env);
  const child = spawnTied(command, args, { cwd: ROOT, env });
  const tail = outputTail(child);
  const url = `http://127.0.0.1:${port}/graphql`;
  const exited = once(child, 'exit').then(() => Promise.reject(new Error(`${peer} exited:\n${tail()}`)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const answered = await Promise.race([
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query":"{ __typename }"}',
      }).then(
        (r) => r.status < 500,
        () => false,
      ),
      exited,
    ]);
    if (answered) break;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`${peer} did not answer in 60 s:\n${tail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  exited.catch(() => undefined);
  return {
    pid: child.pid!,
    url,
    output: tail,
    stop: async () => void (await stopChild(child, 'SIGTERM', 15_000)),
  };
}

/** Our gateway over the bench supergraph: dev tokens, no rate limits, limits that admit the query. */
function ourGatewayEnv(options: PeerOptions, port: number): NodeJS.ProcessEnv {
  return {
    SUPERGRAPH_PATH: options.supergraphFile,
    SUPERGRAPH_POLL_MS: '0',
    GATEWAY_PORT: String(port),
    HOST: '127.0.0.1',
    AUTH_MODE: 'dev',
    ALLOW_DEV_AUTH_IN_PRODUCTION: 'true', // a bench of the production configuration, with dev-signed tokens
    DATA_DIR: options.dataDir,
    LOG_LEVEL: 'warn',
    DATABASE_URL: '',
    NATS_URL: '',
    REDIS_URL: '',
    // The benchmark's query nests list fields 4 deep: its estimated cost is far above our default budget.
    MAX_COST: '10000000',
    // The bench's subgraphs take batched requests, as ours do (npm start batches to all of them).
    SUBGRAPH_BATCHING: '*',
    ...RATE_LIMITS_OFF,
    OTEL_EXPORTER_OTLP_ENDPOINT: '',
  };
}
