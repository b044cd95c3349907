// Gateway benchmark: the four subgraphs of graphql-hive/graphql-gateways-benchmark and its nested query,
// served by our gateway and by @apollo/gateway (in @apollo/server, and in graphql-yoga), Hive Gateway and
// mercurius' gateway, each one process on core 0, with the subgraphs and the load on core 1. Closed loop
// at 50 connections (the benchmark's query, then a per-request $first), then an open loop at a fixed rate
// for latency; peers alternate within each round; every response is checked against Apollo Server's
// answer, byte for byte.
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signDevToken } from '../lib/devKeys.ts';
import { calibrateHttp } from './calibrate.ts';
import { pinningUnavailable, pinSelf, residentMiB } from './cores.ts';
import type { Exchange } from './gateway/load.ts';
import { measure as measurePhase, med, type Phase } from './gateway/measure.ts';
import { summarizeProfile } from './gateway/profile.ts';
import { BENCH_QUERY, BENCH_QUERY_WITH_VARIABLE, PRODUCT_COUNT } from './gateway/query.ts';
import {
  FLOOR,
  PEERS as ALL_PEERS,
  recordFetches,
  startPeer,
  startSubgraphs,
  subgraphExchanges,
  subgraphFetches,
  writeSupergraph,
  type BenchProcess,
  type Peer,
  type PeerOptions,
} from './gateway/servers.ts';
import { fixed, printColumns, printFixedRate, total, whole } from './gateway/table.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

// Read when the bench starts (run.ts sets BENCH_QUICK after the imports).
const quick = () => process.env['BENCH_QUICK'] === '1';
const phaseSeconds = () => Number(process.env['BENCH_SECONDS'] ?? (quick() ? 3 : 8));
const CONNECTIONS = 50;
// Fixed-rate phase: this share of Apollo Server's closed-loop rate, the same for every peer.
const OPEN_LOOP_SHARE = 0.5;
const REFERENCE: Peer = 'apollo-server';
const PASSES = ['same query', 'per-request $first'] as const;
type Pass = (typeof PASSES)[number];
/**
 * The peers of this run: all, or those BENCH_PEERS names (comma-separated; for quicker iterations, the
 * ratios need pulsegraph, pulsegraph-nodedupe, apollo-server and hive-gateway).
 */
const PEERS = ALL_PEERS.filter(
  (peer) => !process.env['BENCH_PEERS'] || process.env['BENCH_PEERS'].split(',').includes(peer),
);

/** Sends one operation to a peer; the body as answered, without Apollo Server's trailing newline. */
async function ask(url: string, token: string, body: string): Promise<string> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`reference answer ${response.status}: ${text.slice(0, 300)}`);
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** Request bodies of each pass and the answers expected, taken from the reference peer. */
async function exchangesFrom(url: string, token: string): Promise<Record<Pass, (n: number) => Exchange>> {
  const body = JSON.stringify({ query: BENCH_QUERY });
  const expected = await ask(url, token, body);
  if (expected.includes('"errors"'))
    throw new Error(`the reference answered errors: ${expected.slice(0, 500)}`);
  const withFirst = (first: number) =>
    JSON.stringify({ query: BENCH_QUERY_WITH_VARIABLE, variables: { first }, operationName: 'TestQuery' });
  const byFirst: string[] = [];
  for (let first = 1; first <= PRODUCT_COUNT; first++) byFirst.push(await ask(url, token, withFirst(first)));
  return {
    'same query': () => ({ body, expected }),
    // $first = n + 1: distinct in every request of a run; from PRODUCT_COUNT on, every product.
    'per-request $first': (n) => ({
      body: withFirst(n + 1),
      expected: byFirst[Math.min(n + 1, PRODUCT_COUNT) - 1]!,
    }),
  };
}

/**
 * Starts the floor (peers/floor.ts): the subgraph operations the reference sends for one bench query,
 * recorded, replayed per request by a gateway hand-written for that query.
 */
async function startFloor(options: PeerOptions, referenceUrl: string, token: string): Promise<BenchProcess> {
  const body = JSON.stringify({ query: BENCH_QUERY });
  let answer = '';
  const fetches = await recordFetches(options.subgraphUrls, async () => {
    answer = await ask(referenceUrl, token, body);
  });
  const file = join(options.dataDir, 'floor.json');
  await writeFile(file, JSON.stringify({ fetches, answer }));
  return startPeer(FLOOR, { ...options, env: { ...options.env, BENCH_FLOOR: file } });
}

/** Runs one load phase against a peer, counting the subgraph fetches it caused. */
const measure = (
  peer: BenchProcess,
  subgraphUrls: Record<string, string>,
  token: string,
  exchange: (n: number) => Exchange,
  seconds: number,
  rate?: number,
) =>
  measurePhase(peer, {
    token,
    connections: CONNECTIONS,
    exchange,
    seconds,
    rate,
    fetches: () => subgraphFetches(subgraphUrls),
    exchanges: () => subgraphExchanges(subgraphUrls),
  });

/** Profiles our gateway under the closed loop and prints where its CPU time went. */
async function profileOurs(
  options: PeerOptions,
  dir: string,
  token: string,
  exchange: (n: number) => Exchange,
) {
  const SECONDS = phaseSeconds();
  const profileDir = join(dir, 'profile');
  const ours = await startPeer('pulsegraph', {
    ...options,
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
  });
  // The profile covers the whole process; only the samples of the measured load are summarized.
  let window: { fromEndMs: number; toEndMs: number } | undefined;
  try {
    await measure(ours, options.subgraphUrls, token, exchange, Math.max(1, SECONDS / 2)); // warm-up
    const loadStarted = performance.now();
    await measure(ours, options.subgraphUrls, token, exchange, SECONDS * 2);
    const loadEnded = performance.now();
    await ours.stop();
    const exited = performance.now();
    window = { fromEndMs: exited - loadStarted, toEndMs: exited - loadEnded };
  } finally {
    await ours.stop();
  }
  const [file] = (await readdir(profileDir)).filter((name) => name.endsWith('.cpuprofile'));
  if (!file) return console.log('\nprofile: our gateway wrote no .cpuprofile (did it exit cleanly?)');
  const { functions, packages } = await summarizeProfile(join(profileDir, file), window);
  const row = (e: { name: string; ms: number; share: number }) => [
    e.name.slice(0, 110),
    whole(e.ms),
    fixed(e.share * 100),
  ];
  printColumns(
    `profile of our gateway (node --cpu-prof; the ${SECONDS * 2} s of closed loop, same query, after a warm-up): self time by package`,
    ['package', 'ms', '%'],
    packages.slice(0, 12).map(row),
  );
  printColumns('self time by function (top 20)', ['function', 'ms', '%'], functions.slice(0, 20).map(row));
}

/** Runs the gateway benchmark and prints its tables, ratios and targets. */
export async function benchGateway(): Promise<void> {
  const QUICK = quick();
  const SECONDS = phaseSeconds();
  const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? (QUICK ? 1 : 3));
  const WARMUP_SECONDS = QUICK ? 1 : 4;
  const OPEN_LOOP_WARMUP_SECONDS = QUICK ? 1 : 3;
  const restoreCpus = pinSelf(1); // autocannon here, and the subgraphs, on core 1; gateways on core 0
  const dir = await scratchDir('gateway-bench');
  const running: BenchProcess[] = [];
  try {
    const subgraphs = await startSubgraphs();
    running.push(subgraphs);
    const options: PeerOptions = {
      supergraphFile: await writeSupergraph(dir, subgraphs.urls),
      subgraphUrls: subgraphs.urls,
      dataDir: dir,
    };
    const token = await signDevToken(dir, { tenant: 'bench', roles: ['viewer'] });
    const calibration = await calibrateHttp(QUICK ? 1_000 : 3_000);
    const peers = new Map<Peer, BenchProcess>();
    for (const name of PEERS) {
      const peer = await startPeer(name, options);
      running.push(peer);
      peers.set(name, peer);
    }
    const exchanges = await exchangesFrom(peers.get(REFERENCE)!.url, token);
    const floor = await startFloor(options, peers.get(REFERENCE)!.url, token);
    running.push(floor);
    await measure(floor, subgraphs.urls, token, exchanges['same query'], WARMUP_SECONDS / 2);
    const floorPhases: Phase[] = [];
    const idleRss = new Map([...peers].map(([name, peer]) => [name, residentMiB(peer.pid)]));
    for (const [, peer] of peers)
      for (const pass of PASSES)
        await measure(peer, subgraphs.urls, token, exchanges[pass], WARMUP_SECONDS / 2);

    const closed = new Map<string, Phase[]>();
    for (let round = 1; round <= ROUNDS; round++) {
      floorPhases.push(await measure(floor, subgraphs.urls, token, exchanges['same query'], SECONDS));
      for (const pass of PASSES)
        for (const [name, peer] of peers) {
          const phase = await measure(peer, subgraphs.urls, token, exchanges[pass], SECONDS);
          const key = `${name}|${pass}`;
          closed.set(key, [...(closed.get(key) ?? []), phase]);
        }
    }
    await floor.stop();
    const closedOf = (peer: Peer, pass: Pass = 'same query') => closed.get(`${peer}|${pass}`)!;

    const rate = Number(
      process.env['BENCH_RATE'] ??
        Math.max(10, Math.round(med(closedOf(REFERENCE), 'rps') * OPEN_LOOP_SHARE)),
    );
    const open = new Map<Peer, Phase[]>();
    for (let round = 1; round <= ROUNDS; round++)
      for (const [name, peer] of peers) {
        // Minutes of other peers' phases went by since this one last ran: its keep-alive connections to
        // the subgraphs have timed out and its JIT has moved on. A warm-up at the same rate first, so
        // the phase measures the latency of a gateway running at that rate, not of one waking up.
        await measure(peer, subgraphs.urls, token, exchanges['same query'], OPEN_LOOP_WARMUP_SECONDS, rate);
        open.set(name, [
          ...(open.get(name) ?? []),
          await measure(peer, subgraphs.urls, token, exchanges['same query'], SECONDS, rate),
        ]);
      }

    // Report.
    // The floor: the hand-written gateway's CPU per request (the same query; the $first pass answers the
    // same bytes from its 9th request on). The bare-exchange figure (1 + fetches) x one bare node:http
    // exchange, which leaves out the bytes and the JSON, is printed beside it.
    const floorCpuMs = med(floorPhases, 'cpuMsPerRequest');
    const bareExchangeMs = (fetches: number) => ((1 + fetches) * 1000) / calibration;
    const unpinned = pinningUnavailable();
    console.log(
      `\ngateway: ${PEERS.length} gateways, ${CONNECTIONS} connections, ${SECONDS} s phases, ${ROUNDS} round(s) ` +
        `alternating peers, medians; warm-up ${WARMUP_SECONDS} s each${QUICK ? ' (quick run: figures indicative only)' : ''}`,
    );
    console.log(
      unpinned
        ? `pinning: none (${unpinned}); gateways, subgraphs and load share every core`
        : 'pinning: each gateway alone on core 0 (taskset -c 0); subgraphs and the load (autocannon, undici) on core 1',
    );
    console.log(
      `calibration: bare node:http on one core: ${whole(calibration)} requests/s (${fixed(1000 / calibration, 3)} ms CPU each)`,
    );
    const referenceFetches = med(closedOf(REFERENCE), 'fetchesPerRequest');
    console.log(
      `CPU floor per request: ${fixed(floorCpuMs, 2)} ms, measured: a gateway hand-written for this one query ` +
        `(bench/gateway/peers/floor.ts: parse the request, send the ${whole(referenceFetches)} subgraph operations ${REFERENCE} sends, ` +
        `parse their answers, JSON.stringify the answer), ${whole(1000 / floorCpuMs)} req/s per core, ` +
        `${total(floorPhases, 'mismatches') + total(floorPhases, 'failures')} bad or failed answers; ` +
        `bare exchanges alone ((1 + ${whole(referenceFetches)}) x a bare node:http request) ${fixed(bareExchangeMs(referenceFetches), 2)} ms`,
    );
    const header = [
      'gateway',
      'requests',
      'req/s',
      'req/s/core',
      'CPU ms/req',
      'x floor',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'fetches/req (HTTP)',
      'RSS MiB',
      'bad',
      'failed',
    ];
    for (const pass of PASSES) {
      printColumns(
        `closed loop, ${pass}`,
        header,
        PEERS.map((name) => {
          const phases = closedOf(name, pass);
          const cpu = med(phases, 'cpuMsPerRequest');
          return [
            name,
            whole(phases.reduce((sum, p) => sum + p.requests, 0)),
            whole(med(phases, 'rps')),
            whole(1000 / cpu),
            fixed(cpu, 2),
            fixed(cpu / floorCpuMs),
            fixed(med(phases, 'p50')),
            fixed(med(phases, 'p95')),
            fixed(med(phases, 'p99')),
            `${fixed(med(phases, 'fetchesPerRequest'))} (${fixed(med(phases, 'exchangesPerRequest'))})`,
            whole(Math.max(...phases.map((p) => p.rssMiB))),
            String(phases.reduce((s, p) => s + p.mismatches, 0)),
            String(phases.reduce((s, p) => s + p.failures, 0)),
          ];
        }),
      );
    }
    printFixedRate(
      `fixed rate: ${whole(rate)} requests/s offered to each (${OPEN_LOOP_SHARE}x ${REFERENCE}'s closed-loop rate), same query, after a ${OPEN_LOOP_WARMUP_SECONDS} s warm-up at that rate`,
      PEERS.map((name) => [name, open.get(name)!]),
    );
    console.log(`idle RSS MiB: ${PEERS.map((name) => `${name} ${whole(idleRss.get(name)!)}`).join(', ')}`);
    for (const [key, phases] of closed)
      for (const phase of phases)
        if (phase.firstMismatch) console.log(`${key}: first mismatching body: ${phase.firstMismatch}`);

    printTargets(closedOf, open, floorCpuMs);
    const logged = peers.get('pulsegraph')!.output();
    if (logged) console.log(`\nour gateway's last log lines (LOG_LEVEL=warn):\n${logged.slice(-3_000)}`);
    await peers.get('pulsegraph')!.stop();
    await profileOurs(options, dir, token, exchanges['same query']);
  } finally {
    for (const child of running.reverse()) await child.stop();
    await rm(dir, { recursive: true, force: true });
    restoreCpus();
  }
}

/** The summary line of ratios and each target of issue #10, met or missed. */
function printTargets(
  closedOf: (peer: Peer, pass?: Pass) => Phase[],
  open: Map<Peer, Phase[]>,
  floorMs: number,
): void {
  const needed: Peer[] = ['pulsegraph', 'pulsegraph-nodedupe', REFERENCE, 'hive-gateway'];
  if (!needed.every((peer) => PEERS.includes(peer))) {
    console.log(`\nsummary: not judged (BENCH_PEERS leaves out one of ${needed.join(', ')})`);
    return;
  }
  // Judged on both passes: the same query (where a peer may collapse identical requests) and a
  // per-request $first (where it may not); a target is met only when both meet it.
  const perCore = (peer: Peer, pass: Pass) => 1000 / med(closedOf(peer, pass), 'cpuMsPerRequest');
  const ratio = (peer: Peer) =>
    Math.min(...PASSES.map((pass) => perCore('pulsegraph', pass) / perCore(peer, pass)));
  const describe = (peer: Peer) =>
    PASSES.map((pass) => fixed(perCore('pulsegraph', pass) / perCore(peer, pass), 2)).join(' / ');
  const vsApollo = ratio(REFERENCE);
  const vsHive = ratio('hive-gateway');
  // Judged on ours with and without fetch dedupe: without it, ours sends every fetch the floor sends.
  const vsFloor = (peer: Peer) =>
    Math.max(...PASSES.map((pass) => med(closedOf(peer, pass), 'cpuMsPerRequest') / floorMs));
  const cpuVsFloor = Math.max(vsFloor('pulsegraph'), vsFloor('pulsegraph-nodedupe'));
  const p95VsApollo = med(open.get('pulsegraph')!, 'p95') / med(open.get(REFERENCE)!, 'p95');
  const rssVsApollo =
    Math.max(...PASSES.flatMap((pass) => closedOf('pulsegraph', pass).map((p) => p.rssMiB))) /
    Math.max(...PASSES.flatMap((pass) => closedOf(REFERENCE, pass).map((p) => p.rssMiB)));
  const bad = PEERS.flatMap((peer) => PASSES.flatMap((pass) => closedOf(peer, pass))).reduce(
    (s, p) => s + p.mismatches + p.failures,
    0,
  );
  const withoutDedupe =
    perCore('pulsegraph-nodedupe', 'per-request $first') / perCore(REFERENCE, 'per-request $first');
  console.log(
    `\nsummary (same query / per-request $first): pulsegraph req/s per core = ${describe(REFERENCE)}x @apollo/gateway, ` +
      `${describe('hive-gateway')}x Hive Gateway (without subgraph fetch dedupe: ${fixed(withoutDedupe, 2)}x @apollo/gateway on $first); ` +
      `CPU/req = ${fixed(vsFloor('pulsegraph'), 2)}x floor (without dedupe: ${fixed(vsFloor('pulsegraph-nodedupe'), 2)}x); p95 at equal load = ${fixed(p95VsApollo, 2)}x @apollo/gateway; ` +
      `RSS = ${fixed(rssVsApollo, 2)}x @apollo/gateway; ${bad} bad or failed responses in closed loop`,
  );
  const target = (what: string, ok: boolean) =>
    console.log(`target ${what.includes('(-x)') ? 'NO DATA' : ok ? 'met   ' : 'MISSED'} ${what}`);
  target(`req/s per core >= 4x @apollo/gateway on both passes (${describe(REFERENCE)}x)`, vsApollo >= 4);
  target(`req/s per core >= 2x Hive Gateway on both passes (${describe('hive-gateway')}x)`, vsHive >= 2);
  target(
    `CPU per request <= 3x floor, with and without dedupe, both passes (worst ${fixed(cpuVsFloor, 2)}x)`,
    cpuVsFloor <= 3,
  );
  target(`p95 at equal offered load <= 0.5x @apollo/gateway (${fixed(p95VsApollo, 2)}x)`, p95VsApollo <= 0.5);
  target(`RSS per worker <= 0.5x @apollo/gateway (${fixed(rssVsApollo, 2)}x)`, rssVsApollo <= 0.5);
}
