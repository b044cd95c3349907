// Live KPIs end to end over the real pipeline (ingest -> writer -> calculator -> KPI stream), through
// a gateway that runs as its own OS process: it is SIGKILLed mid-stream and restarted, and it reloads
// its supergraph file while subscribers stay connected.
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/network.ts';
import { decodeCursor } from '../streams/cursor.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { gatewayMetric, wsClient, wsSubscribe } from './support/subscribers.ts';

const KPI_UPDATED = `subscription ($after: String) {
  kpiUpdated(codes: ["visits"], after: $after) { value cursor kpi { name unit } }
}`;
const INGEST = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted } }`;
interface KpiValue {
  value: number;
  cursor: string;
  kpi: { name: string; unit: string };
}

let platform: TestPlatform;
let gateway: ChildProcess | undefined;
let gatewayUrl: string;
let supergraphPath: string;
let admin: string;
let sent = 0;

async function startGatewayProcess(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['gateway/server.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'fatal',
      AUTH_MODE: 'dev',
      DATA_DIR: platform.dataDir,
      NATS_URL: platform.nats.url,
      GATEWAY_PORT: String(port),
      SUPERGRAPH_PATH: supergraphPath,
      SUPERGRAPH_POLL_MS: '200',
      SUBGRAPH_METADATA_URL: platform.subgraphUrls.metadata,
      SUBGRAPH_METRICS_URL: platform.subgraphUrls.metrics,
      SUBGRAPH_REPORTS_URL: platform.subgraphUrls.reports,
      SUBGRAPH_INSIGHTS_URL: platform.subgraphUrls.insights,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await fetch(new URL('/healthz', gatewayUrl))
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return child;
    if (Date.now() > deadline) throw new Error('the gateway process did not come up');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Ingests `count` visits through the in-process gateway. */
async function ingest(count: number): Promise<void> {
  const events = Array.from({ length: count }, () => ({
    id: `visit-${sent++}`,
    type: 'USER_ACTION',
    name: 'visit',
    source: 'web',
    timestamp: new Date().toISOString(),
  }));
  const { body } = await platform.graphql(INGEST, {
    token: await platform.token('acme', ['ingest']),
    variables: { events },
  });
  expect(body.errors).toBeUndefined();
}

/** Every sequence of kpi.acme.visits on the KPI stream. */
async function streamSequences(): Promise<number[]> {
  const nc = await connect({ servers: platform.nats.url });
  try {
    const consumer = await jetstream(nc).consumers.get('KPI', {
      filter_subjects: 'kpi.acme.visits',
      deliver_policy: DeliverPolicy.All,
    });
    const seqs: number[] = [];
    let pending = (await consumer.info(true)).num_pending;
    while (pending > 0) {
      for await (const m of await consumer.fetch({ max_messages: pending, expires: 1_000 })) {
        seqs.push(m.seq);
        pending = m.info.pending;
      }
    }
    return seqs;
  } finally {
    await nc.close();
  }
}

beforeAll(async () => {
  platform = await startTestPlatform({ workers: true });
  admin = await platform.token('acme', ['admin']);
  supergraphPath = join(platform.dataDir, 'supergraph.graphql');
  await copyFile('supergraph.graphql', supergraphPath);
  const { body } = await platform.graphql(
    `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`,
    {
      token: admin,
      variables: {
        input: {
          code: 'visits',
          name: 'Visits',
          unit: 'visits',
          eventName: 'visit',
          aggregation: 'COUNT',
          refreshSeconds: 1,
        },
      },
    },
  );
  expect(body.errors).toBeUndefined();
  const port = await freePort();
  gatewayUrl = `http://127.0.0.1:${port}/graphql`;
  gateway = await startGatewayProcess(port);
}, 60_000);
afterAll(async () => {
  gateway?.kill('SIGKILL');
  await platform?.stop();
});

describe('live KPI values through a gateway process', () => {
  it('survive a SIGKILL of the gateway: a client resuming by cursor misses nothing and gets nothing twice', async () => {
    const viewer = await platform.token('acme', ['viewer']);
    const client = wsClient(gatewayUrl, viewer);
    const before = wsSubscribe<KpiValue>(client, KPI_UPDATED, {}, 'kpiUpdated');
    for (let round = 1; round <= 3; round++) {
      await ingest(10);
      await expect.poll(() => before.values.at(-1)?.value, { timeout: 15_000 }).toBe(sent);
    }
    expect(before.values.at(-1)!.kpi).toEqual({ name: 'Visits', unit: 'visits' });

    gateway!.kill('SIGKILL');
    await new Promise((resolve) => gateway!.once('exit', resolve));
    await client.dispose();
    // While the gateway is down, the calculator goes on publishing.
    for (let round = 1; round <= 3; round++) {
      const published = (await streamSequences()).length;
      await ingest(10);
      await expect
        .poll(async () => (await streamSequences()).length, { timeout: 15_000 })
        .toBeGreaterThan(published);
    }
    gateway = await startGatewayProcess(Number(new URL(gatewayUrl).port));

    const again = wsClient(gatewayUrl, viewer);
    const after = wsSubscribe<KpiValue>(
      again,
      KPI_UPDATED,
      { after: before.values.at(-1)!.cursor },
      'kpiUpdated',
    );
    await ingest(10);
    await expect.poll(() => after.values.at(-1)?.value, { timeout: 15_000 }).toBe(sent);
    const received = [...before.values, ...after.values].map((v) => decodeCursor(v.cursor)!);
    const published = await streamSequences();
    expect(received).toEqual(published.slice(published.indexOf(received[0]!)));
    after.close();
    await again.dispose();
  }, 90_000);

  it('keeps subscribers through a supergraph reload and refuses a supergraph that does not load', async () => {
    const viewer = await platform.token('acme', ['viewer']);
    const client = wsClient(gatewayUrl, viewer);
    const live = wsSubscribe<KpiValue>(client, KPI_UPDATED, {}, 'kpiUpdated');
    await live.until(1);
    const sdl = await readFile(supergraphPath, 'utf8');
    await writeFile(
      supergraphPath,
      sdl.replace('Live KPI values; after', 'Live KPI values (reloaded); after'),
    );
    await expect.poll(() => reloads('loaded'), { timeout: 10_000 }).toBe(1);
    await writeFile(supergraphPath, 'this is not a supergraph');
    await expect.poll(() => reloads('refused'), { timeout: 10_000 }).toBe(1);
    await ingest(5);
    await expect.poll(() => live.values.at(-1)?.value, { timeout: 15_000 }).toBe(sent);
    const { kpis } = (await query(`{ kpis { code } }`, admin)) as { kpis: Array<{ code: string }> };
    expect(kpis.map((k) => k.code)).toEqual(['visits']);
    expect(live.errors).toEqual([]);
    live.close();
    await client.dispose();
  }, 60_000);
});

const reloads = (outcome: string) =>
  gatewayMetric(gatewayUrl, `pulsegraph_supergraph_reloads_total{outcome="${outcome}"}`);

async function query(text: string, token: string): Promise<unknown> {
  const response = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: text }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data;
}
