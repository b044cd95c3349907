// Ingest benchmark: sustained events/s end to end (GraphQL ingestEvents and POST /events, until every
// event is stored with its rollups) against raw JetStream publishing of the same events on this machine.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { streamDefinitions } from '../streams/definitions.ts';
import { publishAll } from '../streams/publisher.ts';
import { startLocalPlatform, type LocalPlatform } from '../scripts/localPlatform.ts';
import { startPostgres } from '../scripts/localServices.ts';
import { median, printTable } from './report.ts';

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

async function waitStored(admin: pg.Pool, expected: number): Promise<void> {
  for (;;) {
    const { rows } = await admin.query<{ n: string }>(
      "SELECT count(*) AS n FROM events WHERE tenant_id = 'bench'",
    );
    if (Number(rows[0]!.n) >= expected) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function endToEnd(
  platform: LocalPlatform,
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
      const { body } = await platform.graphql(
        'mutation ($e: [EventInput!]!) { ingestEvents(events: $e) { accepted } }',
        { token, variables: { e: batch } },
      );
      if (body.errors) throw new Error(JSON.stringify(body.errors));
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
  const nc = await connect({ servers: url });
  const js = jetstream(nc);
  // A stream of its own with the settings of EVENTS, so the writer does not see these messages.
  const jsm = await jetstreamManager(nc);
  const events0 = streamDefinitions.find((d) => d.name === 'EVENTS')!;
  await jsm.streams.add({ ...events0, name: 'BENCH_RAW', subjects: ['bench.raw.>'] }).catch(() => undefined);
  const events = makeEvents(100 + round, EVENTS);
  const started = performance.now();
  const messages = events.map((e) => ({ subject: `bench.raw.${e.name}`, body: e, msgID: `raw:${e.id}` }));
  for (let i = 0; i < messages.length; i += BATCH) await publishAll(js, messages.slice(i, i + BATCH));
  const rate = EVENTS / ((performance.now() - started) / 1000);
  await nc.close();
  return rate;
}

/** Runs the ingest benchmark and prints its table and ratios. */
export async function benchIngest(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pulsegraph-bench-'));
  await chmod(dir, 0o755);
  const postgres = await startPostgres({ dataDir: join(dir, 'pg'), persistent: false });
  const platform = await startLocalPlatform({
    clusterAdminUrl: postgres.adminUrl,
    appPassword: 'bench-app',
    workers: true,
  });
  const admin = new pg.Pool({ connectionString: platform.adminUrl, max: 2 });
  try {
    const define = `mutation { defineKpi(input: { code: "revenue", name: "Revenue", eventName: "checkout.completed", aggregation: SUM, valueField: "amount", dimensions: ["country"] }) { code } }`;
    await platform.graphql(define, { token: await platform.token('bench', ['admin']) });
    let stored = 0;
    // Warm-up: JIT, pools and consumers, not counted.
    await endToEnd(platform, admin, 0, 'graphql', stored);
    stored += EVENTS;
    const results = {
      raw: [] as number[],
      graphqlAcked: [] as number[],
      graphqlStored: [] as number[],
      httpStored: [] as number[],
    };
    for (let round = 1; round <= ROUNDS; round++) {
      results.raw.push(await rawPublish(platform.nats.url, round));
      const viaGraphql = await endToEnd(platform, admin, round, 'graphql', stored);
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
        ['raw JetStream publish (bounded in-flight acks)', raw, 1],
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
    console.log(
      `summary: end to end ${Math.round(median(results.graphqlStored))} events/s = ${(median(results.graphqlStored) / raw).toFixed(2)}x raw JetStream publish`,
    );
  } finally {
    await admin.end();
    await platform.stop();
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
