// What the dashboard bench prints: how it ran, a closed-loop table per pass, the fixed-rate table and the
// summary line of ours against Apollo Server and Hive Gateway.
import { pinningUnavailable } from '../cores.ts';
import { med, type Phase } from '../gateway/measure.ts';
import type { Peer } from '../gateway/servers.ts';
import { fixed, printColumns, printFixedRate, total, whole } from '../gateway/table.ts';
import { REFERENCE, type Running } from './peers.ts';
import { TENANT, type Seeded } from './seed.ts';

/** Phases by pass (e.g. one viewer), then by peer. */
export type Phases = Map<string, Map<Peer, Phase[]>>;

/** What a run measured, for the report. */
export interface DashboardRun {
  peers: Running[];
  settings: { connections: number; seconds: number; rounds: number; warmupSeconds: number; quick: boolean };
  seeded: Seeded;
  answerBytes: number;
  calibration: number;
  closed: Phases;
  /** The fixed-rate phases, of the pass `openPass`, at `rate` requests/s for each peer. */
  open: Map<Peer, Phase[]>;
  openPass: string;
  rate: number;
  /** Settings of our gateway besides its production defaults. */
  oursNote: string;
}

const loadedRss = (phases: Phase[]) => Math.max(...phases.map((p) => p.rssMiB));

/** How the run was set up. */
function printSetup(run: DashboardRun): void {
  const { settings: s, seeded, peers } = run;
  const unpinned = pinningUnavailable();
  console.log(
    `\ndashboard: ${peers.length} gateways, ${s.connections} connections, ${s.seconds} s phases, ${s.rounds} round(s) ` +
      `alternating peers, medians; warm-up ${s.warmupSeconds} s each${s.quick ? ' (quick run: figures indicative only)' : ''}`,
  );
  console.log(
    unpinned
      ? `pinning: none (${unpinned}); gateways, platform and load share every core`
      : 'pinning: each gateway alone on core 0 (taskset -c 0); Postgres, NATS, Redis, the four subgraphs ' +
          '(in the bench process) and the load on core 1: the subgraphs bound the closed-loop rate',
  );
  console.log(`calibration: bare node:http on one core: ${whole(run.calibration)} requests/s`);
  console.log(
    `seeded tenant "${TENANT}": ${seeded.kpis} KPIs, ${whole(seeded.events)} events, ${seeded.insights} insights, ` +
      `${seeded.reports} reports (settled in ${fixed(seeded.settleSeconds)} s; writer, calculator and detector stopped since)`,
  );
  console.log(
    `query: the dashboard's Dashboard query (metadata, metrics, insights, reports) without current.at (a read time); ` +
      `answer ${whole(run.answerBytes)} bytes; every peer forwards Authorization to every subgraph`,
  );
  console.log(
    `supergraph: composed from supergraph.yaml at the platform's URLs; the peers but ours get @requiresScopes linked ` +
      `without for: SECURITY (@apollo/gateway refuses it otherwise); every subgraph checks the scopes`,
  );
  console.log(
    `our gateway: ${run.oursNote}; the query passes the default limits too (seeding ran it through them)`,
  );
  console.log(
    `answers: byte for byte as ${REFERENCE}'s, or else parsed JSON deep-equal (key order ignored); right only as ` +
      `parsed JSON: ${peers.map((peer) => `${peer.name} ${peer.reordered}`).join(', ')}`,
  );
}

/** Prints the report of a run. */
export function printDashboardReport(run: DashboardRun): void {
  printSetup(run);
  const header = ['gateway', 'requests', 'req/s', 'req/s/core', 'CPU ms/req', 'p50 ms', 'p95 ms', 'p99 ms'];
  for (const [pass, byPeer] of run.closed)
    printColumns(
      `closed loop, ${pass}`,
      [...header, 'fetches/req', 'RSS idle', 'RSS loaded', 'bad', 'failed'],
      run.peers.map(({ name, idleRss }) => {
        const phases = byPeer.get(name)!;
        const cpu = med(phases, 'cpuMsPerRequest');
        return [
          name,
          whole(total(phases, 'requests')),
          whole(med(phases, 'rps')),
          whole(1000 / cpu),
          fixed(cpu, 2),
          fixed(med(phases, 'p50')),
          fixed(med(phases, 'p95')),
          fixed(med(phases, 'p99')),
          fixed(med(phases, 'fetchesPerRequest')),
          whole(idleRss),
          whole(loadedRss(phases)),
          whole(total(phases, 'mismatches')),
          whole(total(phases, 'failures')),
        ];
      }),
    );
  console.log(
    'fetches/req: operations the metadata, metrics and insights subgraphs answered per request (reports uncounted)',
  );
  printFixedRate(
    `fixed rate, ${run.openPass}: ${whole(run.rate)} requests/s offered to each (half ${REFERENCE}'s closed-loop rate)`,
    run.peers.map(({ name }) => [name, run.open.get(name)!]),
  );
  for (const [pass, byPeer] of [...run.closed, [`fixed rate, ${run.openPass}`, run.open] as const])
    for (const [name, phases] of byPeer)
      for (const { firstMismatch } of phases)
        if (firstMismatch) console.log(`${name}, ${pass}: first bad answer: ${firstMismatch}`);
  printSummary(run);
}

/** The summary line: ours against Apollo Server and Hive Gateway, per core on each pass, at equal load, in memory. */
function printSummary(run: DashboardRun): void {
  const passes = [...run.closed.keys()];
  const has = (peer: Peer) => run.peers.some((p) => p.name === peer);
  const cpu = (peer: Peer, pass: string) => med(run.closed.get(pass)!.get(peer) ?? [], 'cpuMsPerRequest');
  // Ratios of requests per core on each pass: the other's CPU per request over ours.
  const perCore = (ours: Peer) =>
    (['Apollo Server', 'Hive Gateway'] as const)
      .map((label, i) => {
        const peer: Peer = i ? 'hive-gateway' : REFERENCE;
        if (!has(ours) || !has(peer)) return `- ${label}`;
        return `${passes.map((pass) => fixed(cpu(peer, pass) / cpu(ours, pass), 2)).join(' / ')}x ${label}`;
      })
      .join(', ');
  const p95 = (peer: Peer) => med(run.open.get(peer) ?? [], 'p95');
  const rss = (peer: Peer) =>
    Math.max(...[...run.closed.values()].flatMap((m) => m.get(peer) ?? []).map((p) => p.rssMiB));
  const bad = [...run.closed.values(), run.open]
    .flatMap((byPeer) => [...byPeer.values()].flat())
    .reduce((sum, p) => sum + p.mismatches + p.failures, 0);
  console.log(
    `\nsummary (${passes.join(' / ')}): req/s per gateway core: pulsegraph ${perCore('pulsegraph')}; ` +
      `without subgraph fetch dedupe ${perCore('pulsegraph-nodedupe')}; ` +
      `p95 at equal load (${run.openPass}) = ${fixed(p95('pulsegraph') / p95(REFERENCE), 2)}x Apollo Server, ` +
      `${fixed(p95('pulsegraph') / p95('hive-gateway'), 2)}x Hive Gateway; loaded RSS = ` +
      `${fixed(rss('pulsegraph') / rss(REFERENCE), 2)}x Apollo Server; ${bad} bad or failed responses; ` +
      `calibration ${whole(run.calibration)} bare node:http requests/s on one core`,
  );
}
