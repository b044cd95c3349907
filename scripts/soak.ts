// npm run soak -- --minutes N: the platform in this process over its own Postgres, NATS and Redis, the
// simulator at a steady rate and K live subscribers for N minutes; samples memory, event-loop lag,
// consumer lag and open handles, prints them as a table and a summary, and fails when memory grew.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createClient, type Client } from 'graphql-ws';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import WebSocket from 'ws';
import { ingestedEvents } from '../lib/metrics.ts';
import { consumers } from '../streams/consumers.ts';
import { eachLine, spawnTied, stopChild, waitForExit } from './childProcesses.ts';
import { startLocalPlatform } from './localPlatform.ts';
import { startPostgres } from './localPostgres.ts';
import { KPIS } from './simulation/catalog.ts';
import { scratchDir } from './scratchDir.ts';

const USAGE = `usage: npm run soak -- [options]
  --minutes N       how long the simulator runs (default 30)
  --rate N          simulator events per second (default 100)
  --subscribers K   graphql-ws subscribers of every simulated KPI (default 20)
  --interval S      seconds between samples (default 30, at most a tenth of the run)
  --max-heap-growth-mb M  fail when the heap retained after a full GC grew by more than M MB from the end
                    of warm-up (a fifth of the run) to the end (default 32)
  --max-rss-growth-mb M   the same for RSS (default 128)
  -h, --help        show this help`;

const TENANT = 'soak';
const APP_PASSWORD = 'pulsegraph-soak-app';
const KPI_UPDATED = `subscription ($codes: [ID!]!) { kpiUpdated(codes: $codes) { value cursor } }`;
const MB = 1024 * 1024;

/** One row of the table. */
interface Sample {
  minute: number;
  rssMb: number;
  heapMb: number;
  loopP99Ms: number;
  loopMaxMs: number;
  consumerLag: number;
  handles: number;
  eventsIn: number;
  updates: number;
}

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`--${name} expects a positive number, but got "${text}"`);
  return value;
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' },
      rate: { type: 'string' },
      subscribers: { type: 'string' },
      interval: { type: 'string' },
      'max-heap-growth-mb': { type: 'string' },
      'max-rss-growth-mb': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help' as const;
  const minutes = positive('minutes', values.minutes, 30);
  return {
    minutes,
    rate: positive('rate', values.rate, 100),
    subscribers: Math.round(positive('subscribers', values.subscribers, 20)),
    intervalMs: Math.min(positive('interval', values.interval, 30), minutes * 6) * 1000,
    maxHeapGrowthMb: positive('max-heap-growth-mb', values['max-heap-growth-mb'], 32),
    maxRssGrowthMb: positive('max-rss-growth-mb', values['max-rss-growth-mb'], 128),
  };
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const pad = (value: string | number, width: number) => String(value).padStart(width);

/** Events the gateway's ingest answered as newly accepted, from this process's metrics registry. */
async function eventsAccepted(): Promise<number> {
  const { values } = await ingestedEvents.get();
  return values.find((v) => v.labels.outcome === 'accepted')?.value ?? 0;
}

async function main(): Promise<number> {
  const options = parseOptions();
  if (options === 'help') {
    say(USAGE);
    return 0;
  }
  const root = await scratchDir('soak');
  const postgres = await startPostgres({ dataDir: join(root, 'pg'), persistent: false });
  const platform = await startLocalPlatform({
    clusterAdminUrl: postgres.adminUrl,
    appPassword: APP_PASSWORD,
    workers: true,
    logLevel: 'warn',
  });
  const admin = new pg.Pool({ connectionString: platform.adminUrl, max: 1 });
  const nc = await connect({ servers: platform.nats.url });
  const jsm = await jetstreamManager(nc);
  const consumerLag = async () => {
    const info = await jsm.consumers.info(consumers.writer.stream, consumers.writer.config.durable_name);
    return info.num_pending + info.num_ack_pending;
  };
  say(
    `soak: ${options.minutes} min at ~${options.rate} ev/s, ${options.subscribers} subscribers -> ${platform.gatewayUrl}`,
  );

  const simulator = spawnTied(
    process.execPath,
    [
      'scripts/simulate.ts',
      '--url',
      platform.gatewayUrl,
      '--tenant',
      TENANT,
      '--rate',
      String(options.rate),
      '--duration',
      String(options.minutes * 60),
      '--seed',
      '7',
    ],
    { env: { ...process.env, DATA_DIR: platform.dataDir }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let simulatorTotals = '';
  if (simulator.stdout)
    eachLine(simulator.stdout, (line) => {
      if (line.startsWith('totals:')) simulatorTotals = line;
    });
  const simulatorDone = waitForExit(simulator);
  // The simulator defines its KPIs first; subscribers of undefined KPIs would see nothing.
  await new Promise((resolve) => setTimeout(resolve, 5_000));

  const token = await platform.token(TENANT, ['viewer']);
  let updates = 0;
  let subscriberErrors = 0;
  const clients: Client[] = [];
  for (let i = 0; i < options.subscribers; i++) {
    const client = createClient({
      url: platform.gatewayUrl.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
    });
    client.subscribe(
      { query: KPI_UPDATED, variables: { codes: KPIS.map((kpi) => kpi.code) } },
      {
        next: (result) => (result.errors ? (subscriberErrors += 1) : (updates += 1)),
        error: () => (subscriberErrors += 1),
        complete: () => undefined,
      },
    );
    clients.push(client);
  }

  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const samples: Sample[] = [];
  const started = Date.now();
  say(
    [
      'minute',
      'rss MB',
      'heap MB',
      'loop p99 ms',
      'loop max ms',
      'consumer lag',
      'handles',
      'events in',
      'updates',
    ]
      .map((h) => pad(h, 13))
      .join(''),
  );
  // With --expose-gc (npm run soak), a full collection first: the heap figure is then what is retained.
  const collect = (globalThis as { gc?: () => void }).gc;
  const sample = async () => {
    collect?.();
    const memory = process.memoryUsage();
    const row: Sample = {
      minute: (Date.now() - started) / 60_000,
      rssMb: memory.rss / MB,
      heapMb: memory.heapUsed / MB,
      loopP99Ms: loop.percentile(99) / 1e6,
      loopMaxMs: loop.max / 1e6,
      consumerLag: await consumerLag().catch(() => -1),
      handles: process.getActiveResourcesInfo().length,
      eventsIn: await eventsAccepted(),
      updates,
    };
    loop.reset();
    samples.push(row);
    say(
      [
        row.minute.toFixed(1),
        row.rssMb.toFixed(1),
        row.heapMb.toFixed(1),
        row.loopP99Ms.toFixed(1),
        row.loopMaxMs.toFixed(1),
        row.consumerLag,
        row.handles,
        row.eventsIn,
        row.updates,
      ]
        .map((v) => pad(v, 13))
        .join(''),
    );
  };
  const sampler = setInterval(() => void sample(), options.intervalMs);
  const status = await simulatorDone;
  clearInterval(sampler);

  // Drain: the writer catches up with what was accepted before the totals are read.
  const drainDeadline = Date.now() + 60_000;
  while ((await consumerLag().catch(() => -1)) !== 0 && Date.now() < drainDeadline)
    await new Promise((resolve) => setTimeout(resolve, 500));
  await new Promise((resolve) => setTimeout(resolve, 2_000)); // the last KPI values reach subscribers
  await sample();
  const eventsIn = await eventsAccepted();
  const stored = Number(
    (await admin.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE tenant_id = $1', [TENANT]))
      .rows[0]!.n,
  );
  const lagAtEnd = await consumerLag().catch(() => -1);

  // Memory at start = the first sample after a warm-up of a fifth of the run; at end = the last sample.
  const warm = samples.find((s) => s.minute >= options.minutes / 5) ?? samples[0]!;
  const last = samples.at(-1)!;
  const heapGrowthMb = last.heapMb - warm.heapMb;
  const rssGrowthMb = last.rssMb - warm.rssMb;
  const problems: string[] = [];
  if (status.code !== 0) problems.push(`the simulator exited with ${status.code ?? status.signal}`);
  if (stored !== eventsIn) problems.push(`${eventsIn} events accepted but ${stored} stored`);
  if (lagAtEnd !== 0) problems.push(`the writer's consumer still lags by ${lagAtEnd}`);
  if (heapGrowthMb > options.maxHeapGrowthMb)
    problems.push(
      `the heap grew ${heapGrowthMb.toFixed(1)} MB, over the ${options.maxHeapGrowthMb} MB allowed`,
    );
  if (rssGrowthMb > options.maxRssGrowthMb)
    problems.push(`RSS grew ${rssGrowthMb.toFixed(1)} MB, over the ${options.maxRssGrowthMb} MB allowed`);

  say('');
  say(`simulator:          ${simulatorTotals || '(no totals line)'}`);
  say(`events in:          ${eventsIn}`);
  say(`events stored:      ${stored}`);
  say(`updates delivered:  ${updates} to ${options.subscribers} subscribers (${subscriberErrors} errors)`);
  say(
    `memory at start:    rss ${warm.rssMb.toFixed(1)} MB, heap ${warm.heapMb.toFixed(1)} MB (minute ${warm.minute.toFixed(1)})`,
  );
  say(`memory at end:      rss ${last.rssMb.toFixed(1)} MB, heap ${last.heapMb.toFixed(1)} MB`);
  say(`event-loop lag:     worst p99 ${Math.max(...samples.map((s) => s.loopP99Ms)).toFixed(1)} ms`);
  say(`consumer lag (end): ${lagAtEnd}`);
  say(problems.length ? `FAIL: ${problems.join('; ')}` : 'PASS: memory flat, every accepted event stored');

  for (const client of clients) await client.dispose();
  await stopChild(simulator);
  await nc.close();
  await admin.end();
  await platform.stop();
  await postgres.stop();
  await rm(root, { recursive: true, force: true });
  return problems.length ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`soak: ${(error as Error).message}\n`);
  process.exitCode = 2;
}
