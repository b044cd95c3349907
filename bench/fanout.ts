// Fan-out benchmark: publish-to-receipt latency of live KPI values, from the KPI stream through a gateway
// process on core 0 to N graphql-ws subscribers on core 1, against two peers on core 0 serving the same N
// clients: a bare `ws` server sending one pre-serialized frame of the same size (the ceiling), and
// graphql-ws's own server executing the selection once per subscriber. Phases alternate (A B C A B C).
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { envelope } from '../streams/envelope.ts';
import { subjects } from '../streams/subjects.ts';
import { calibrateHttp } from './calibrate.ts';
import { pinningUnavailable, pinSelf, residentMiB } from './cores.ts';
import { latencyRow, printLatencyTable, type LatencyRow } from './fanout/latencyTable.ts';
import { runPhase, type PhaseOptions, type PhaseResult } from './fanout/phase.ts';
import { readMetrics, readMetricsWhenIdle, startGatewayProcess, startStdinServer } from './fanout/servers.ts';
import type { ServerProcess, StdinServer } from './fanout/servers.ts';
import { startBenchPlatform, type BenchPlatform } from './platform.ts';
import { median, printTarget } from './report.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

const REQUESTED = Number(process.env['BENCH_SUBSCRIBERS'] ?? 10_000);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 20);
const ROUNDS = 3; // a median of 3 phases sets aside one that something else on the machine slowed
const WARMUP = 2; // updates per phase before measuring (JIT, first sends), not counted
const BATCH = 500;
const FD_RESERVE = 256; // descriptors a process needs besides its sockets to subscribers (~60 seen)
const DRAIN_MS = 10_000;
const TENANT = 'acme';
const CODE = 'orders';
const SUBSCRIPTION = `subscription { kpiUpdated(codes: ["${CODE}"]) { value at cursor kpi { name unit } } }`;
const COUNTERS = [
  'pulsegraph_subscription_executions_total',
  'pulsegraph_subscription_deliveries_total',
  'pulsegraph_subscription_conflated_total',
  'pulsegraph_subscription_overflows_total',
];
// What the gateway should be back to once a phase's clients have gone, and its heap then.
const IDLE_GAUGES = [
  ['pulsegraph_websockets_open', 'websockets_open', 1],
  ['pulsegraph_subscriptions_active', 'subscriptions_active', 1],
  ['pulsegraph_subscription_groups', 'subscription_groups', 1],
  ['nodejs_heap_size_used_bytes', 'heap used MiB', 2 ** 20],
] as const;

const gauges = (metrics: Map<string, number>) =>
  IDLE_GAUGES.map(([name, label, unit]) => `${label} ${Math.round((metrics.get(name) ?? 0) / unit)}`).join(
    ', ',
  );

/** N, lowered when a process could not hold N sockets (each server and this process hold one end each). */
export function subscriberCount(): number {
  const limit = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  const fits = limit === 'unlimited' ? Infinity : Number(limit) - FD_RESERVE;
  if (REQUESTED <= fits) return REQUESTED;
  if (fits < 1) throw new Error(`ulimit -n is ${limit}: too low to open any subscriber; raise it`);
  console.log(
    `ulimit -n is ${limit}: ${REQUESTED} subscribers need ${REQUESTED + FD_RESERVE} descriptors per process ` +
      `(its end of every socket + ${FD_RESERVE} spare); running ${fits} (raise it with ulimit -n to run more)`,
  );
  return fits;
}

/** Publishes a KPI value as the calculator does. */
async function publishKpi(js: JetStreamClient, value: number): Promise<void> {
  const at = new Date().toISOString();
  const payload = { kpi: { code: CODE }, value, at, window: '24h', dimensions: null, metric: null };
  const message = envelope({ eventType: 'kpi.value', source: 'bench', tenant: TENANT, payload });
  await js.publish(subjects.kpi(TENANT, CODE), JSON.stringify(message));
}

type Server = 'gateway' | 'raw' | 'graphql-ws';
const SERVERS: Record<Server, string> = { gateway: 'gateway', raw: 'raw ws', 'graphql-ws': 'graphql-ws' };

/** Prints what the phases measured: the table, the ratios, the targets of issue #10. */
function report(count: number, runs: Record<Server, PhaseResult[]>, calibration: number): void {
  const medians = Object.fromEntries(
    Object.entries(SERVERS).map(([server, label]) => [
      server,
      latencyRow(`${label} (median)`, runs[server as Server]),
    ]),
  ) as Record<Server, LatencyRow>;
  const unpinned = pinningUnavailable();
  console.log(
    `\nfanout: ${count.toLocaleString('en')} subscribers, one update per second for ${SECONDS} s, ` +
      `A B C x${ROUNDS}, frames of ${runs.gateway[0]!.sample.length} bytes`,
  );
  console.log(
    unpinned
      ? `pinning: none (${unpinned}); servers and clients share every core`
      : 'pinning: each server on core 0 (taskset -c 0); this process (clients, publisher, NATS, Postgres, ' +
          'subgraphs) on core 1 (taskset -a -p -c 1)',
  );
  console.log(`calibration: bare node:http on one core: ${Math.round(calibration)} requests/s`);
  const phases = runs.gateway.flatMap((run, i) => [run, runs.raw[i]!, runs['graphql-ws'][i]!]);
  printLatencyTable('publish-to-receipt latency', [
    ...phases.map((run) => latencyRow(run.name, [run])),
    ...Object.values(medians),
  ]);
  const { gateway, raw } = medians;
  const peer = medians['graphql-ws'];
  const vs = (row: LatencyRow, key: 'p50' | 'p99') => (row[key] / gateway[key]).toFixed(2);
  console.log(
    `summary: gateway p50 ${gateway.p50.toFixed(1)} ms, p99 ${gateway.p99.toFixed(1)} ms; raw ws is ` +
      `${vs(raw, 'p50')}x / ${vs(raw, 'p99')}x of that, graphql-ws per subscriber ${vs(peer, 'p50')}x / ` +
      `${vs(peer, 'p99')}x (p50 / p99)`,
  );
  const completeness = Math.min(...runs.gateway.map((run) => latencyRow(run.name, [run]).completeness));
  printTarget(`completeness 1.0 in every gateway phase (${completeness.toFixed(4)})`, completeness === 1);
  const vsRaw = gateway.p99 / raw.p99;
  printTarget(`p99 within 1.3x of the raw ws broadcast (${vsRaw.toFixed(2)}x)`, vsRaw <= 1.3);
  const vsPeer = peer.p99 / gateway.p99;
  printTarget(
    `p99 >= 2x better than graphql-ws executing per subscriber (${vsPeer.toFixed(2)}x)`,
    vsPeer >= 2,
  );
  const cpu = (server: Server) => median(runs[server].map((run) => run.cpuMsPerUpdate)).toFixed(0);
  console.log(
    `server CPU ms per update (median): gateway ${cpu('gateway')}, raw ws ${cpu('raw')}, ` +
      `graphql-ws ${cpu('graphql-ws')}`,
  );
  // p99 over 10,000 subscribers follows a phase's slowest updates: which updates were slow, and by how much.
  console.log('slowest updates by phase (ms until the last subscriber had it; update number in brackets):');
  for (const run of phases) {
    const slowest = run.lastReceipts
      .map((ms, update) => ({ ms, update: update + 1 }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 3)
      .map(({ ms, update }) => `${ms.toFixed(0)} [${update}]`);
    console.log(
      `  ${run.name.padEnd(16)} median ${median(run.lastReceipts).toFixed(0)}, slowest ${slowest.join(', ')}`,
    );
  }
  const outOfOrder = phases.reduce((sum, run) => sum + run.outOfOrder, 0);
  if (outOfOrder) console.log(`${outOfOrder} values arrived twice or out of order`);
}

/** Runs the fan-out benchmark and prints its table, ratios and the gateway's subscription counters. */
export async function benchFanout(): Promise<void> {
  const count = subscriberCount();
  // taskset -a -p on this process: every thread, and every child started from now on (NATS, Postgres).
  const restoreCpus = pinSelf(1);
  const dir = await scratchDir('bench');
  let bench: BenchPlatform | undefined;
  let gateway: ServerProcess | undefined;
  let raw: StdinServer | undefined;
  let peer: StdinServer | undefined;
  let nc: NatsConnection | undefined;
  try {
    // Without workers, nothing but this bench publishes KPI values.
    bench = await startBenchPlatform(dir);
    const { platform } = bench;
    const calibration = await calibrateHttp();
    gateway = await startGatewayProcess(platform);
    raw = await startStdinServer('raw');
    peer = await startStdinServer('graphql-ws');
    nc = await connect({ servers: platform.nats.url });
    const js = jetstream(nc);
    const define = `mutation { defineKpi(input: { code: "${CODE}", name: "Orders", unit: "count", eventName: "order.placed", aggregation: COUNT }) { code } }`;
    const { body } = await platform.graphql(define, { token: await platform.token(TENANT, ['admin']) });
    if (body.errors) throw new Error(`defineKpi failed: ${JSON.stringify(body.errors)}`);
    const viewer = await platform.token(TENANT, ['viewer']);
    const handshake = {
      init: JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${viewer}` } }),
      subscribe: JSON.stringify({ id: '1', type: 'subscribe', payload: { query: SUBSCRIPTION } }),
    };
    let value = 0;
    const phase = { subscribers: count, batch: BATCH, warmup: WARMUP, updates: SECONDS, drainMs: DRAIN_MS };
    const common: Omit<PhaseOptions, 'name' | 'server' | 'publish'> = { ...phase, nextValue: () => value++ };
    await publishKpi(js, value++); // the snapshot every subscriber starts with: its sign of being ready

    const counters = new Map(COUNTERS.map((name) => [name, 0]));
    const runs: Record<Server, PhaseResult[]> = { gateway: [], raw: [], 'graphql-ws': [] };
    const idleRss = residentMiB(gateway.pid);
    const idle: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const before = await readMetrics(gateway.wsUrl);
      const publish = (v: number) => publishKpi(js, v);
      runs.gateway.push(
        await runPhase({ ...common, name: `gateway #${round}`, server: gateway, publish, handshake }),
      );
      const after = await readMetricsWhenIdle(gateway.wsUrl);
      for (const name of COUNTERS)
        counters.set(name, counters.get(name)! + (after.get(name) ?? 0) - (before.get(name) ?? 0));
      if (round === 1) idle.push(`before phase #1: ${gauges(before)}`);
      idle.push(`after phase #${round}, its clients gone: ${gauges(after)}`);
      // The baseline's frame: a `next` message of the gateway with the new value, so of the same size.
      const next = JSON.parse(runs.gateway[0]!.sample) as { payload: { data: { kpiUpdated: object } } };
      const frame = (v: number) => {
        Object.assign(next.payload.data.kpiUpdated, { value: v, at: new Date().toISOString() });
        return JSON.stringify(next);
      };
      const broadcast = (v: number) => raw!.send(frame(v));
      runs.raw.push(await runPhase({ ...common, name: `raw ws #${round}`, server: raw, publish: broadcast }));
      // The peer's values: the gateway's, each a new value at the time of publication.
      const { kpiUpdated } = next.payload.data;
      const value = (v: number) =>
        peer!.send(JSON.stringify({ ...kpiUpdated, value: v, at: new Date().toISOString() }));
      const name = `graphql-ws #${round}`;
      runs['graphql-ws'].push(await runPhase({ ...common, name, server: peer, publish: value, handshake }));
    }

    idle.push(`at the end, idle through the last raw phase: ${gauges(await readMetrics(gateway.wsUrl))}`);
    report(count, runs, calibration);
    const values = ROUNDS * (SECONDS + WARMUP + 1);
    const [executions, deliveries, conflated, overflows] = COUNTERS.map((name) => counters.get(name)!);
    console.log(
      `gateway /metrics over its phases: pulsegraph_subscription_executions_total +${executions} for ` +
        `${values} values (${SECONDS} updates + ${WARMUP} warm-up + 1 snapshot per phase), ` +
        `pulsegraph_subscription_conflated_total +${conflated}, deliveries_total +${deliveries}, ` +
        `overflows_total +${overflows}`,
    );
    const rss = runs.gateway.map((run) => run.rssMiB.toFixed(0)).join(', ');
    console.log(
      `gateway memory: ${idleRss.toFixed(0)} MiB idle; ${rss} MiB with every subscriber (by phase)`,
    );
    for (const line of idle) console.log(`gateway ${line}`);
    const { logged } = gateway;
    console.log(`gateway logged ${logged.length} warnings/errors${logged.length ? ', the first:' : ''}`);
    for (const line of logged.slice(0, 5)) console.log(`  ${line.slice(0, 300)}`);
  } finally {
    await nc?.close();
    await raw?.stop();
    await peer?.stop();
    await gateway?.stop();
    await bench?.stop();
    await rm(dir, { recursive: true, force: true });
    restoreCpus();
  }
}
