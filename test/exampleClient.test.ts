// The typed example client (examples/client/) against the real platform: what its generated types
// promise is what the gateway sends, over HTTP (plain fetch) and graphql-ws, resuming by cursor; and its
// codegen manifest is what a gateway in persisted-only mode runs, by documentId.
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { startGateway } from '../gateway/server.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import type { RunningService } from '../lib/service.ts';
import { execute, GatewayRequestError } from '../examples/client/client.ts';
import { kpiOverview, watchKpis, type KpiSummary, type LiveKpiValue } from '../examples/client/kpiWatch.ts';
import { kpiOverviewQuery } from '../examples/client/operations.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { services } from './support/services.ts';
import { publishKpiValues } from './support/subscribers.ts';

let platform: TestPlatform;
let viewer: string;
let persistedOnly: RunningService;

/** Collects live values until `count` arrived, then stops watching. */
async function watch(options: { codes: string[]; after?: string }, count: number): Promise<LiveKpiValue[]> {
  const values: LiveKpiValue[] = [];
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  await watchKpis(
    { url: platform.gatewayUrl, token: viewer, ...options, signal: controller.signal },
    (value) => {
      values.push(value);
      if (values.length === count) controller.abort();
    },
  );
  clearTimeout(timer);
  return values;
}

beforeAll(async () => {
  platform = await startTestPlatform();
  const admin = await platform.token('acme', ['admin']);
  viewer = await platform.token('acme', ['viewer']);
  const defined = await platform.graphql(
    'mutation { defineKpi(input: { code: "checkout.revenue", name: "Revenue", unit: "EUR", eventName: "checkout.completed", aggregation: SUM, valueField: "amount" }) { code } }',
    { token: admin },
  );
  expect(defined.body.errors).toBeUndefined();
  persistedOnly = await startGateway(
    loadConfig({
      NODE_ENV: 'test',
      AUTH_MODE: 'dev',
      LOG_LEVEL: 'silent',
      DATA_DIR: platform.dataDir,
      NATS_URL: platform.nats.url,
      REDIS_URL: services().redisUrl,
      GATEWAY_PORT: '0',
      SUPERGRAPH_POLL_MS: '0',
      SUBGRAPH_METADATA_URL: platform.subgraphUrls.metadata,
      SUBGRAPH_METRICS_URL: platform.subgraphUrls.metrics,
      SUBGRAPH_REPORTS_URL: platform.subgraphUrls.reports,
      SUBGRAPH_INSIGHTS_URL: platform.subgraphUrls.insights,
      PERSISTED_ONLY: 'true',
      PERSISTED_OPERATIONS_PATH: 'examples/client/gql/persisted-documents.json',
    }),
    createLogger('gateway', 'silent'),
  );
}, 60_000);

afterAll(async () => {
  await persistedOnly?.close();
  await platform?.stop();
});

describe('the typed example client', () => {
  it('reads the KPI overview with plain fetch, in the shape its generated type declares', async () => {
    const kpis = await kpiOverview({ url: platform.gatewayUrl, token: viewer });
    expectTypeOf(kpis).toEqualTypeOf<KpiSummary[]>();
    expectTypeOf<KpiSummary['unit']>().toEqualTypeOf<string | null>();
    // SUM over no events is 0, at now.
    expect(kpis).toEqual([
      {
        code: 'checkout.revenue',
        name: 'Revenue',
        unit: 'EUR',
        window: '24h',
        current: { value: 0, at: expect.any(String) as string },
      },
    ]);
  });

  it('streams kpiUpdated over graphql-ws with every selected field and nothing else, then resumes after a cursor without gaps or duplicates', async () => {
    const live = watch({ codes: ['checkout.revenue'] }, 3);
    // The first value is the current one; publish after the subscription has started.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await publishKpiValues(platform.nats.url, 'acme', [
      { code: 'checkout.revenue', value: 10 },
      { code: 'checkout.revenue', value: 20.5 },
      { code: 'checkout.revenue', value: null },
    ]);
    const values = await live;
    expect(values.map((value) => value.value)).toEqual([10, 20.5, null]);
    for (const value of values) {
      expect(Object.keys(value).sort()).toEqual(['at', 'cursor', 'kpi', 'value']);
      expect(value.kpi).toEqual({ code: 'checkout.revenue', name: 'Revenue', unit: 'EUR' });
      expect(typeof value.cursor).toBe('string');
      expect(new Date(value.at).toISOString()).toBe(value.at);
    }
    expectTypeOf<LiveKpiValue['value']>().toEqualTypeOf<number | null>();

    const resumed = await watch({ codes: ['checkout.revenue'], after: values[0]!.cursor }, 2);
    expect(resumed.map((value) => value.cursor)).toEqual(values.slice(1).map((value) => value.cursor));
  });

  it('runs by documentId from its manifest on a persisted-only gateway, which refuses the text it was not given', async () => {
    const options = { url: persistedOnly.url, token: viewer };
    const byId = await execute({ ...options, persisted: true }, kpiOverviewQuery);
    expect(byId.kpis.map((kpi) => kpi.code)).toEqual(['checkout.revenue']);
    const refused = await execute(options, kpiOverviewQuery).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(GatewayRequestError);
    expect((refused as GatewayRequestError).errors[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_ALLOWED');
  });
});
