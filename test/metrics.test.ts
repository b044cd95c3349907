// Metrics (issue #9): /metrics on the gateway, the subgraphs and a worker process parses as the Prometheus
// text exposition format, and its series move when traffic flows: requests by operation name and outcome,
// subgraph fetches, ingested events, JetStream consumption and rollup writes, Postgres pool saturation.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil, freePort } from '../scripts/network.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { startServiceProcess, type ServiceProcess } from './support/processes.ts';

/** Samples of one scrape: series key (name and sorted labels) -> value; families with their TYPE. */
interface Scrape {
  samples: Map<string, number>;
  types: Map<string, string>;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?,?\\})? (\\S+)(?: -?\\d+)?$`);
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

const keyOf = (name: string, labels: Record<string, string>) =>
  `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)))}`;

/**
 * Parses the Prometheus text format (version 0.0.4) strictly: every line is a HELP, a TYPE or a sample of
 * a family whose TYPE came first, values are floats, and each histogram's buckets rise to its count.
 */
function parseExposition(text: string): Scrape {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const [index, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const fail = (why: string) => new Error(`line ${index + 1} ${why}: ${JSON.stringify(line)}`);
    if (line.startsWith('#')) {
      const comment = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!comment) throw fail('is not a HELP or TYPE comment');
      if (!new RegExp(`^${NAME}$`).test(comment[2]!)) throw fail('names no valid metric');
      if (comment[1] === 'TYPE') {
        if (!TYPES.has(comment[3]!)) throw fail('declares an unknown type');
        types.set(comment[2]!, comment[3]!);
      }
      continue;
    }
    const sample = SAMPLE.exec(line);
    if (!sample) throw fail('is not a sample');
    const [, name, labelText, valueText] = sample as unknown as [string, string, string | undefined, string];
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count|total|created)$/, '');
    if (!types.has(family)) throw fail('has no TYPE before it');
    // As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case; prom-client prints "Nan".
    const value = /^[+-]?inf(inity)?$/i.test(valueText)
      ? (valueText.startsWith('-') ? -1 : 1) * Infinity
      : /^nan$/i.test(valueText)
        ? NaN
        : Number(valueText);
    if (Number.isNaN(value) && !/^nan$/i.test(valueText)) throw fail('has a value that is not a number');
    const labels = Object.fromEntries(
      [...(labelText ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [
        m[1]!,
        m[2]!,
      ]),
    );
    samples.set(keyOf(name, labels), value);
  }
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, Array<[number, number]>>();
    for (const [key, value] of samples) {
      if (!key.startsWith(`${family}_bucket[`)) continue;
      const labels = Object.fromEntries(JSON.parse(key.slice(family.length + 7)) as Array<[string, string]>);
      const le = labels['le'] === '+Inf' ? Infinity : Number(labels['le']);
      delete labels['le'];
      const rest = keyOf(`${family}_count`, labels);
      series.set(rest, [...(series.get(rest) ?? []), [le, value]]);
    }
    for (const [countKey, buckets] of series) {
      buckets.sort(([a], [b]) => a - b);
      buckets.forEach(([, v], i) => {
        if (i > 0 && v < buckets[i - 1]![1]) throw new Error(`${family} buckets fall at ${countKey}`);
      });
      if (buckets.at(-1)![0] !== Infinity || buckets.at(-1)![1] !== samples.get(countKey))
        throw new Error(`${family}: +Inf bucket is not the count at ${countKey}`);
    }
  }
  return { samples, types };
}

/** Fetches and parses a /metrics endpoint. */
async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(new URL('/metrics', url));
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

/** The value of a series (0 when absent): exact labels. */
const valueOf = (scrape: Scrape, name: string, labels: Record<string, string> = {}) =>
  scrape.samples.get(keyOf(name, labels)) ?? 0;

/** The sum of a family's series whose labels include `labels`. */
function sumOf(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of scrape.samples) {
    if (!key.startsWith(`${name}[`)) continue;
    const own = Object.fromEntries(JSON.parse(key.slice(name.length)) as Array<[string, string]>);
    if (Object.entries(labels).every(([k, v]) => own[k] === v)) sum += value;
  }
  return sum;
}

let platform: TestPlatform;
let writer: ServiceProcess;
let writerUrl: string;
let admin: string;

beforeAll(async () => {
  // No in-process writer: the writer process below is the only consumer of EVENTS.
  platform = await startTestPlatform();
  admin = await platform.token('acme', ['admin']);
  const port = await freePort();
  writer = startServiceProcess(platform, 'subgraphs/metrics/writer.ts', {
    METRICS_LISTEN_PORT: String(port),
  });
  writerUrl = `http://127.0.0.1:${port}`;
  const up = await pollUntil(
    () =>
      fetch(new URL('/healthz', writerUrl)).then(
        (r) => r.ok,
        () => false,
      ),
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  expect(up, 'the writer process did not serve /healthz').toBe(true);
});

afterAll(async () => {
  await writer?.kill();
  await platform?.stop();
});

describe('/metrics', () => {
  it('parses as Prometheus text on the gateway, every subgraph and a worker', async () => {
    for (const url of [platform.gatewayUrl, ...Object.values(platform.subgraphUrls), writerUrl]) {
      const { types } = await scrape(url);
      expect(types.size, url).toBeGreaterThan(0);
    }
    // The worker serves its own process's registry, with the process metrics of prom-client.
    const worker = await scrape(writerUrl);
    expect(worker.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(worker.types.get('pulsegraph_jetstream_messages_total')).toBe('counter');
    const gateway = await scrape(platform.gatewayUrl);
    expect(gateway.types.get('pulsegraph_gateway_body_buffers_free_bytes')).toBe('gauge');
    expect(gateway.samples.has(keyOf('pulsegraph_gateway_body_buffers_free_bytes', {}))).toBe(true);
  });

  it('moves when queries and events flow', async () => {
    const gatewayBefore = await scrape(platform.gatewayUrl);
    const writerBefore = await scrape(writerUrl);

    const listed = await platform.graphql('query KpiList { kpis { code } }', { token: admin });
    expect(listed.body.errors).toBeUndefined();
    const refused = await platform.graphql('query KpiList { kpis { code } }');
    expect(refused.status).toBe(401);
    const events = Array.from({ length: 3 }, (_, i) => ({
      type: 'BUSINESS_EVENT',
      name: 'order.placed',
      source: 'web',
      timestamp: new Date(Date.now() - i * 1000).toISOString(),
      attributes: { amount: 10 + i },
    }));
    const ingested = await platform.graphql(
      'mutation IngestOrders($events: [EventInput!]!) { ingestEvents(events: $events) { accepted } }',
      { token: admin, variables: { events } },
    );
    expect(ingested.body.data).toEqual({ ingestEvents: { accepted: 3 } });

    const gateway = await scrape(platform.gatewayUrl);
    const moved = (name: string, labels: Record<string, string>) =>
      valueOf(gateway, name, labels) - valueOf(gatewayBefore, name, labels);
    const request = { service: 'gateway', operation: 'KpiList' };
    expect(moved('pulsegraph_graphql_requests_total', { ...request, outcome: 'ok' })).toBe(1);
    expect(moved('pulsegraph_graphql_requests_total', { ...request, outcome: 'refused' })).toBe(1);
    expect(moved('pulsegraph_graphql_request_duration_seconds_count', request)).toBe(2);
    expect(
      moved('pulsegraph_graphql_requests_total', {
        service: 'gateway',
        operation: 'IngestOrders',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(
      moved('pulsegraph_subgraph_fetch_duration_seconds_count', { subgraph: 'metadata', outcome: 'ok' }),
    ).toBe(1);
    expect(
      moved('pulsegraph_subgraph_fetch_duration_seconds_count', { subgraph: 'metrics', outcome: 'ok' }),
    ).toBe(1);
    expect(moved('pulsegraph_ingest_events_total', { outcome: 'accepted' })).toBe(3);
    // The subgraphs run in this process: their requests are counted under their own service label.
    expect(
      sumOf(gateway, 'pulsegraph_graphql_requests_total', { service: 'metadata' }) -
        sumOf(gatewayBefore, 'pulsegraph_graphql_requests_total', { service: 'metadata' }),
    ).toBe(1);
    // Pool saturation is read at scrape time from the live pools.
    expect(valueOf(gateway, 'pulsegraph_postgres_pool_connections', { pool: 'metadata', state: 'max' })).toBe(
      10,
    );
    expect(
      valueOf(gateway, 'pulsegraph_postgres_pool_connections', { pool: 'metrics', state: 'total' }),
    ).toBeGreaterThan(0);

    // The worker process consumed the three events and wrote their rollups.
    let writerNow = writerBefore;
    const written = () =>
      valueOf(writerNow, 'pulsegraph_rollup_write_duration_seconds_count') -
      valueOf(writerBefore, 'pulsegraph_rollup_write_duration_seconds_count');
    const consumed = () =>
      sumOf(writerNow, 'pulsegraph_jetstream_messages_total', { consumer: 'writer' }) -
      sumOf(writerBefore, 'pulsegraph_jetstream_messages_total', { consumer: 'writer' });
    await pollUntil(
      async () => {
        writerNow = await scrape(writerUrl);
        return consumed() >= 3 && written() >= 1;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(consumed()).toBe(3);
    expect(written()).toBeGreaterThanOrEqual(1);
    expect(
      writerNow.samples.has(keyOf('pulsegraph_jetstream_consumer_pending', { consumer: 'writer' })),
    ).toBe(true);
    expect(valueOf(writerNow, 'pulsegraph_postgres_pool_connections', { pool: 'writer', state: 'max' })).toBe(
      10,
    );
  });
});

describe('docs/grafana-dashboard.json', () => {
  it('queries only metric families that the gateway, the subgraphs and the workers serve', async () => {
    const dashboard = JSON.parse(readFileSync('docs/grafana-dashboard.json', 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    };
    const served = new Set<string>();
    for (const url of [platform.gatewayUrl, writerUrl])
      for (const name of (await scrape(url)).types.keys()) served.add(name);
    const queried = dashboard.panels.flatMap((panel) =>
      (panel.targets ?? []).flatMap((target) =>
        [...target.expr.matchAll(/\b((?:pulsegraph|process|nodejs)_[a-z0-9_]+)/g)].map(
          ([, name]) => [panel.title, name!.replace(/_(bucket|count|sum)$/, '')] as const,
        ),
      ),
    );
    expect(queried.length).toBeGreaterThan(20);
    expect(queried.filter(([, name]) => !served.has(name))).toEqual([]);
  });
});
