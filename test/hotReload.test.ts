// Hot supergraph reload on a gateway process with 100 live subscriptions: a newly composed supergraph
// is served without a restart and every subscriber keeps receiving; one that does not load is refused,
// logged, and the running one keeps serving.
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSupergraph, readSupergraphConfig } from '../gateway/composition.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { startGatewayProcess, type GatewayProcess } from './support/processes.ts';
import {
  gatewayMetric,
  publishKpiValues,
  sseSubscribe,
  wsClient,
  wsSubscribe,
  type Received,
} from './support/subscribers.ts';

const KPI_UPDATED = `subscription { kpiUpdated(codes: ["visits"]) { value kpi { name } } }`;
const KPIS_DESCRIPTION = `{ __type(name: "Query") { fields { name description } } }`;
const RELOADED = 'Every KPI of the caller tenant, by code (from the reloaded supergraph).';

let platform: TestPlatform;
let gateway: GatewayProcess | undefined;
let supergraphPath: string;

beforeAll(async () => {
  platform = await startTestPlatform();
  const { body } = await platform.graphql(
    `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`,
    {
      token: await platform.token('acme', ['admin']),
      variables: { input: { code: 'visits', name: 'Visits', eventName: 'visit', aggregation: 'COUNT' } },
    },
  );
  expect(body.errors).toBeUndefined();
  await publishKpiValues(platform.nats.url, 'acme', [{ code: 'visits', value: 0 }]);
  supergraphPath = join(platform.dataDir, 'supergraph.graphql');
  await copyFile('supergraph.graphql', supergraphPath);
  gateway = await startGatewayProcess(platform, {
    SUPERGRAPH_PATH: supergraphPath,
    SUPERGRAPH_POLL_MS: '200',
  });
}, 60_000);
afterAll(async () => {
  await gateway?.kill();
  await platform?.stop();
});

/** The description the gateway serves for Query.kpis. */
async function kpisDescription(): Promise<string | undefined> {
  const response = await fetch(gateway!.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: KPIS_DESCRIPTION }),
  });
  const body = (await response.json()) as {
    data: { __type: { fields: Array<{ name: string; description: string }> } };
  };
  return body.data.__type.fields.find((f) => f.name === 'kpis')?.description;
}

/** Publishes `value` and waits until every subscriber has it as its latest. */
async function everyoneReceives(subscribers: Received<{ value: number }>[], value: number): Promise<void> {
  await publishKpiValues(platform.nats.url, 'acme', [{ code: 'visits', value }]);
  await expect
    .poll(() => subscribers.filter((s) => s.values.at(-1)?.value === value).length, { timeout: 15_000 })
    .toBe(subscribers.length);
}

describe('a gateway process reloading its supergraph file', () => {
  it('serves a newly composed supergraph and a refused one without dropping any of 100 live subscriptions', async () => {
    const url = gateway!.url;
    const viewer = await platform.token('acme', ['viewer']);
    // 80 subscriptions over 8 graphql-ws connections and 20 SSE streams.
    const clients = Array.from({ length: 8 }, () => wsClient(url, viewer));
    const subscribers: Received<{ value: number }>[] = [
      ...clients.flatMap((client) =>
        Array.from({ length: 10 }, () =>
          wsSubscribe<{ value: number }>(client, KPI_UPDATED, {}, 'kpiUpdated'),
        ),
      ),
      ...Array.from({ length: 20 }, () =>
        sseSubscribe<{ value: number }>(url, viewer, KPI_UPDATED, {}, { field: 'kpiUpdated' }),
      ),
    ];
    expect(subscribers).toHaveLength(100);
    await Promise.all(subscribers.map((s) => s.until(1)));
    await everyoneReceives(subscribers, 1);
    const original = await kpisDescription();
    expect(original).not.toBe(RELOADED);

    // A compatible change composed from the subgraph schemas: a field's description.
    const sources = readSupergraphConfig('supergraph.yaml').map((source) =>
      source.name === 'metadata'
        ? {
            ...source,
            sdl: source.sdl.replace(`"Every KPI of the caller's tenant, by code."`, `"${RELOADED}"`),
          }
        : source,
    );
    expect(sources.find((s) => s.name === 'metadata')!.sdl).toContain(RELOADED);
    await writeFile(supergraphPath, composeSupergraph(sources).supergraphSdl);
    await expect.poll(kpisDescription, { timeout: 10_000 }).toBe(RELOADED);
    expect(await gatewayMetric(url, 'pulsegraph_supergraph_reloads_total{outcome="loaded"}')).toBe(1);
    await everyoneReceives(subscribers, 2);

    // A supergraph that does not load: refused and logged; the reloaded one keeps serving.
    await writeFile(supergraphPath, 'this is not a supergraph');
    await expect
      .poll(() => gatewayMetric(url, 'pulsegraph_supergraph_reloads_total{outcome="refused"}'), {
        timeout: 10_000,
      })
      .toBe(1);
    // The log line may reach us through the pipe after the metric answered.
    await expect
      .poll(() => gateway!.output(), { timeout: 5_000 })
      .toContain('supergraph refused: it does not load; the running one keeps serving');
    expect(await kpisDescription()).toBe(RELOADED);
    await everyoneReceives(subscribers, 3);

    expect(subscribers.flatMap((s) => s.errors)).toEqual([]);
    expect(subscribers.filter((s) => s.completed)).toEqual([]);
    expect(subscribers[0]!.values.at(-1)).toEqual({ value: 3, kpi: { name: 'Visits' } });
    for (const subscriber of subscribers) subscriber.close();
    await Promise.all(clients.map(async (client) => client.dispose()));
  }, 90_000);
});
