// Ingest benchmark: sustained events/s end to end (GraphQL ingestEvents and POST /events, until every
// event is stored with its rollups) against raw JetStream publishing of the same events, and raw Postgres
// COPY of them into a table shaped like `events`, on this machine.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { streamDefinitions } from '../streams/definitions.ts';
import { publishAll } from '../streams/publisher.ts';
import { startPlatformProcesses, type PlatformProcesses } from './platformProcesses.ts';
import { cpuOfDescendants } from './cores.ts';
import { median, printTable, printTarget } from './report.ts';

const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 50_000);
const BATCH = 1_000;
const CLIENTS = 4;
const ROUNDS = 3;

function makeEvents(round: number, count: number) {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => ({
    id: `r${round}-${i}`,
    type: 'BUSINESS_EVENT',
    name: 'checkout.completed',
    source: 'bench',
    timestamp: new Date(now - (i % 3_600) * 1_000).toISOString(),
    attributes: { amount: (i % 10_000) / 100, country: ['DE', 'FR', 'US'][i % 3] },
  }));
}

async function inBatches<T>(items: T[], send: (batch: T[]) => Promise<void>): Promise<void> {
  let next = 0;
  const client = async () => {
    while (next < items.length) {
      const start = next;
      next += BATCH;
      await send(items.slice(start, start + BATCH));
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
}

/**
 * Events stored and rolled up so far: the writer stores an event and adds it to its rollups in one
 * transaction, so the revenue KPI's daily buckets (a few rows) count them. Polling a count(*) of the
 * events themselves instead scanned up to 350,000 rows every 50 ms, on the cores the pipeline runs on.
 */
async function storedSoFar(admin: pg.Pool): Promise<number> {
  const { rows } = await admin.query<{ n: string | null }>(
    "SELECT sum(count) AS n FROM rollups WHERE tenant_id = 'bench' AND kpi_code = 'revenue' AND resolution = '1d'",
  );
  return Number(rows[0]!.n ?? 0);
}

async function waitStored(admin: pg.Pool, expected: number): Promise<void> {
  while ((await storedSoFar(admin)) < expected) await new Promise((r) => setTimeout(r, 50));
}

async function endToEnd(
  platform: PlatformProcesses,
  admin: pg.Pool,
  round: number,
  via: 'graphql' | 'http',
  stored: number,
) {
  const token = await platform.token('bench', ['admin']);
  const events = makeEvents(round * 10 + (via === 'http' ? 1 : 0), EVENTS);
  const started = performance.now();
  await inBatches(events, async (batch) => {
    if (via === 'graphql') {
      await platform.graphql(
        token,
        'mutation ($e: [EventInput!]!) { ingestEvents(events: $e) { accepted } }',
        {
          e: batch,
        },
      );
    } else {
      const response = await fetch(new URL('/events', platform.gatewayUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
        body: batch.map((e) => JSON.stringify(e)).join('\n'),
      });
      if (!response.ok) throw new Error(`POST /events: ${response.status} ${await response.text()}`);
    }
  });
  const acked = performance.now();
  await waitStored(admin, stored + EVENTS);
  const done = performance.now();
  return { acked: EVENTS / ((acked - started) / 1000), stored: EVENTS / ((done - started) / 1000) };
}

async function rawPublish(url: string, round: number): Promise<number> {
  const nc = await connect({ servers: url, noAsyncTraces: true }); // as the platform connects
  // A stream of its own with the settings of EVENTS, so the writer does not see these messages.
  const jsm = await jetstreamManager(nc);
  const events0 = streamDefinitions.find((d) => d.name === 'EVENTS')!;
  await jsm.streams.add({ ...events0, name: 'BENCH_RAW', subjects: ['bench.raw.>'] }).catch(() => undefined);
  const events = makeEvents(100 + round, EVENTS);
  const started = performance.now();
  const messages = events.map((e) => ({ subject: `bench.raw.${e.name}`, body: e, msgID: `raw:${e.id}` }));
  for (let i = 0; i < messages.length; i += BATCH) await publishAll(nc, messages.slice(i, i + BATCH));
  const rate = EVENTS / ((performance.now() - started) / 1000);
  await nc.close();
  return rate;
}

/** A COPY text-format field: backslash, tab and line breaks escaped. */
const copyField = (text: string) =>
  text.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!);

/** Events/s of COPY into a table with the columns and index of `events` (no rollups, no dedupe), as the owner. */
async function rawCopy(admin: pg.Pool, round: number): Promise<number> {
  await admin.query(
    'CREATE TABLE IF NOT EXISTS bench_copy (LIKE events INCLUDING DEFAULTS INCLUDING INDEXES); TRUNCATE bench_copy',
  );
  const events = makeEvents(200 + round, EVENTS);
  const started = performance.now();
  await inBatches(events, async (batch) => {
    const client = await admin.connect();
    try {
      const copy = client.query(
        copyFrom('COPY bench_copy (tenant_id, event_id, ts, type, name, source, attributes) FROM STDIN'),
      );
      const lines = batch.map(
        (e) =>
          `bench\t${e.id}\t${e.timestamp}\t${e.type}\t${e.name}\t${e.source}\t${copyField(JSON.stringify(e.attributes))}\n`,
      );
      await pipeline(Readable.from([lines.join('')]), copy);
    } finally {
      client.release();
    }
  });
  return EVENTS / ((performance.now() - started) / 1000);
}

/** Where the CPU of one end-to-end run (the last round's ingestEvents) went, by process. */
function printCpu(cpu: Map<string, number>): void {
  const total = [...cpu.values()].reduce((a, b) => a + b, 0);
  const rows = [...cpu].filter(([, s]) => s >= 0.05).sort((a, b) => b[1] - a[1]);
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`
CPU of the last ingestEvents run (${EVENTS} events), by process (below this one; same names summed)`);
  for (const [name, seconds] of rows)
    console.log(
      `${name.padEnd(width)}  ${seconds.toFixed(2).padStart(6)} s  ${((100 * seconds) / total).toFixed(1).padStart(5)} %  ${((seconds * 1e6) / EVENTS).toFixed(1).padStart(6)} µs/event`,
    );
}

/** Runs the ingest benchmark and prints its table and ratios. */
export async function benchIngest(): Promise<void> {
  const platform = await startPlatformProcesses('ingest');
  const admin = new pg.Pool({ connectionString: platform.adminUrl, max: CLIENTS + 1 });
  try {
    const define = `mutation { defineKpi(input: { code: "revenue", name: "Revenue", eventName: "checkout.completed", aggregation: SUM, valueField: "amount", dimensions: ["country"] }) { code } }`;
    await platform.graphql(await platform.token('bench', ['admin']), define);
    let stored = 0;
    // Warm-up: JIT, pools and consumers, not counted.
    await endToEnd(platform, admin, 0, 'graphql', stored);
    stored += EVENTS;
    const results = {
      raw: [] as number[],
      copy: [] as number[],
      graphqlAcked: [] as number[],
      graphqlStored: [] as number[],
      httpStored: [] as number[],
    };
    let cpu = new Map<string, number>();
    for (let round = 1; round <= ROUNDS; round++) {
      results.raw.push(await rawPublish(platform.natsUrl, round));
      results.copy.push(await rawCopy(admin, round));
      const spent = cpuOfDescendants(process.pid);
      const viaGraphql = await endToEnd(platform, admin, round, 'graphql', stored);
      cpu = spent();
      stored += EVENTS;
      const viaHttp = await endToEnd(platform, admin, round, 'http', stored);
      stored += EVENTS;
      results.graphqlAcked.push(viaGraphql.acked);
      results.graphqlStored.push(viaGraphql.stored);
      results.httpStored.push(viaHttp.stored);
    }
    const raw = median(results.raw);
    printTable(
      `ingest: ${EVENTS} events per run, batches of ${BATCH}, ${CLIENTS} clients, median of ${ROUNDS}`,
      [
        ['raw JetStream async publish (256 acks outstanding)', raw, 1],
        ['raw Postgres COPY into a table like events', median(results.copy), median(results.copy) / raw],
        [
          'ingestEvents via gateway, acknowledged',
          median(results.graphqlAcked),
          median(results.graphqlAcked) / raw,
        ],
        [
          'ingestEvents via gateway, stored + rolled up',
          median(results.graphqlStored),
          median(results.graphqlStored) / raw,
        ],
        [
          'POST /events (NDJSON), stored + rolled up',
          median(results.httpStored),
          median(results.httpStored) / raw,
        ],
      ],
    );
    printCpu(cpu);
    const rate = median(results.graphqlStored);
    console.log(
      `summary: end to end ${Math.round(rate)} events/s = ${(rate / raw).toFixed(2)}x raw JetStream ` +
        `publish, ${(rate / median(results.copy)).toFixed(2)}x raw Postgres COPY`,
    );
    printTarget(`end to end >= 0.5x raw JetStream publish (${(rate / raw).toFixed(2)}x)`, rate / raw >= 0.5);
    const { rows } = await admin.query<{ n: string; ids: string }>(
      "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events WHERE tenant_id = 'bench'",
    );
    const [count, ids] = [Number(rows[0]!.n), Number(rows[0]!.ids)];
    const rolledUp = await storedSoFar(admin);
    printTarget(
      `zero loss (${count} events stored of ${stored} sent, ${ids} distinct ids, ${rolledUp} in the rollups)`,
      count === stored && ids === stored && rolledUp === stored,
    );
  } finally {
    await admin.end();
    await platform.stop();
  }
}
