// Dashboard benchmark: the gateway bench's peers on our own analytics query (the dashboard's first
// query, bench/dashboard/query.ts) over our four subgraphs, the caller's JWT forwarded to each. Postgres,
// NATS, Redis, the platform (subgraphs in this process) and the load run on core 1; each gateway is one
// process on core 0. Closed loop at 50 connections, as one viewer (the same token: identical requests
// in flight may share subgraph fetches) and as many (a token per request, in turn), then a fixed rate for
// latency; peers alternate within each round; every answer is checked against Apollo Server's.
import { rm } from 'node:fs/promises';
import { signDevToken } from '../lib/devKeys.ts';
import { graphqlRequests } from '../lib/metrics.ts';
import { calibrateHttp } from './calibrate.ts';
import { pinSelf } from './cores.ts';
import { startPeers, REFERENCE, type Running } from './dashboard/peers.ts';
import { DASHBOARD_QUERY } from './dashboard/query.ts';
import { printDashboardReport, type Phases } from './dashboard/report.ts';
import { seedDashboard, TENANT } from './dashboard/seed.ts';
import { writePlatformSupergraph } from './dashboard/supergraph.ts';
import type { Exchange } from './gateway/load.ts';
import { measure, med, type Phase } from './gateway/measure.ts';
import { PEERS, type Peer } from './gateway/servers.ts';
import { startBenchPlatform, type BenchPlatform } from './platform.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

const CONNECTIONS = 50;
const VIEWERS = 100;
const PASSES = ['one viewer', `${VIEWERS} viewers`];
const OPEN_PASS = PASSES[1]!; // the fixed rate: many viewers, as a dashboard's tenant has
const OPEN_LOOP_SHARE = 0.5; // of Apollo Server's closed-loop rate, the same for every peer
/** Our gateway's settings besides its production defaults (bench/gateway/servers.ts: ourGatewayEnv). */
const OURS_NOTE = 'RATE_LIMIT_*=0 and MAX_COST=10,000,000 (other operation limits at their defaults)';

/** Operations the platform's yoga subgraphs (in this process) have answered: all but the reports one. */
async function subgraphFetches(): Promise<number> {
  const { values } = await graphqlRequests.get();
  return values.filter((v) => v.labels.service !== 'gateway').reduce((sum, v) => sum + v.value, 0);
}

/** Runs the dashboard benchmark and prints its tables and summary. */
export async function benchDashboard(): Promise<void> {
  const quick = process.env['BENCH_QUICK'] === '1';
  const settings = {
    connections: CONNECTIONS,
    seconds: Number(process.env['BENCH_SECONDS'] ?? (quick ? 3 : 8)),
    rounds: Number(process.env['BENCH_ROUNDS'] ?? (quick ? 1 : 3)),
    warmupSeconds: quick ? 1 : 4,
    quick,
  };
  // BENCH_PEERS (comma-separated) for quicker iterations; Apollo Server, the reference, always runs.
  const wanted = process.env['BENCH_PEERS']?.split(',');
  const names = PEERS.filter((peer) => peer === REFERENCE || !wanted || wanted.includes(peer));
  // taskset -a -p on this process: every thread, and every child started from now on (Postgres, NATS, Redis).
  const restoreCpus = pinSelf(1);
  const dir = await scratchDir('dashboard-bench');
  let bench: BenchPlatform | undefined;
  const peers: Running[] = [];
  try {
    bench = await startBenchPlatform(dir, { logLevel: 'warn' });
    const { platform } = bench;
    const seeded = await seedDashboard(platform);
    const tokens = await Promise.all(
      Array.from({ length: VIEWERS }, (_, i) =>
        signDevToken(platform.dataDir, { tenant: TENANT, roles: ['viewer'], subject: `viewer-${i}` }),
      ),
    );
    const token = tokens[0]!;
    const supergraph = await writePlatformSupergraph(dir, platform.subgraphUrls);
    const calibration = await calibrateHttp(quick ? 1_000 : 3_000);
    const body = JSON.stringify({
      query: DASHBOARD_QUERY,
      variables: seeded.variables,
      operationName: 'Dashboard',
    });
    const expected = await startPeers(
      peers,
      names,
      {
        supergraphFile: supergraph.composed, // ours reads SUPERGRAPH_PATH; BENCH_SUPERGRAPH is the others'
        subgraphUrls: platform.subgraphUrls,
        dataDir: platform.dataDir, // our gateway verifies the platform's dev tokens, as its subgraphs do
        env: {
          BENCH_SUPERGRAPH: supergraph.peers,
          BENCH_FORWARD_HEADERS: 'authorization',
          BENCH_INIT_AUTHORIZATION: `Bearer ${token}`,
        },
      },
      token,
      body,
    );

    const exchanges: Record<string, (n: number) => Exchange> = {
      [PASSES[0]!]: () => ({ body, expected }),
      [PASSES[1]!]: (n) => ({ body, expected, headers: { authorization: `Bearer ${tokens[n % VIEWERS]}` } }),
    };
    const phase = async (peer: Running, pass: string, seconds: number, rate?: number) => {
      const measured = await measure(peer.process, {
        token,
        connections: CONNECTIONS,
        exchange: exchanges[pass]!,
        seconds,
        rate,
        fetches: subgraphFetches,
        // Not byte for byte: the same JSON (key order aside) is right too, and counted.
        sameJson: true,
      });
      peer.reordered += measured.load.reordered;
      return measured;
    };
    for (const peer of peers) for (const pass of PASSES) await phase(peer, pass, settings.warmupSeconds / 2);
    const closed: Phases = new Map(PASSES.map((pass) => [pass, new Map(peers.map((p) => [p.name, []]))]));
    for (let round = 1; round <= settings.rounds; round++)
      for (const pass of PASSES)
        for (const peer of peers)
          closed
            .get(pass)!
            .get(peer.name)!
            .push(await phase(peer, pass, settings.seconds));
    const rate = Number(
      process.env['BENCH_RATE'] ??
        Math.max(5, Math.round(med(closed.get(OPEN_PASS)!.get(REFERENCE)!, 'rps') * OPEN_LOOP_SHARE)),
    );
    const open = new Map<Peer, Phase[]>(peers.map((peer) => [peer.name, []]));
    for (let round = 1; round <= settings.rounds; round++)
      for (const peer of peers)
        open.get(peer.name)!.push(await phase(peer, OPEN_PASS, settings.seconds, rate));

    printDashboardReport({
      peers,
      settings,
      seeded,
      answerBytes: Buffer.byteLength(expected),
      calibration,
      closed,
      open,
      openPass: OPEN_PASS,
      rate,
      oursNote: OURS_NOTE,
    });
  } finally {
    for (const peer of peers.reverse()) await peer.process.stop();
    await bench?.stop();
    await rm(dir, { recursive: true, force: true });
    restoreCpus();
  }
}
