import { readFileSync } from 'node:fs';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  type GraphQLFormattedError,
  type IntrospectionQuery,
} from 'graphql';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { register } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { responseBodyPool } from '../gateway/execution/responseBuffers.ts';
import { createGateway } from '../gateway/gateway.ts';
import { createTokenVerifier } from '../lib/auth.ts';
import { createLogger } from '../lib/logger.ts';
import { freePort } from '../scripts/network.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const DEFINE = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code name unit aggregation dimensions window } }`;
const READ = `query ($code: ID!) { kpi(code: $code) { code name unit } kpis { code } }`;

let platform: TestPlatform;
let admin: string;

beforeAll(async () => {
  platform = await startTestPlatform();
  admin = await platform.token('acme', ['admin']);
});
afterAll(() => platform?.stop());

/** The value of an in-process counter (the platform runs here: one registry) for the given labels. */
async function counterValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = await register.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter((value) => Object.entries(labels).every(([key, wanted]) => value.labels[key] === wanted))
    .reduce((sum, value) => sum + value.value, 0);
}

/** An in-process gateway over the test platform whose `subgraph` is unreachable. */
async function gatewayWithout(subgraph: string) {
  return createGateway({
    supergraphSdl: readFileSync('supergraph.graphql', 'utf8'),
    subgraphUrls: { ...platform.subgraphUrls, [subgraph]: `http://127.0.0.1:${await freePort()}/graphql` },
    verifier: await createTokenVerifier(platform.config),
    logger: createLogger('gateway', 'silent'),
    production: false,
    allowAnonymousIntrospection: false,
    subgraphTimeoutMs: 2_000,
  });
}

describe('federated KPI definitions through the gateway', () => {
  it('defines a KPI and reads it back with kpi(code) and kpis', async () => {
    const input = {
      code: 'checkout.revenue',
      name: 'Revenue',
      unit: 'EUR',
      eventName: 'checkout.completed',
      aggregation: 'SUM',
      valueField: 'amount',
      dimensions: ['country'],
    };
    const defined = await platform.graphql(DEFINE, { token: admin, variables: { input } });
    expect(defined.body.errors).toBeUndefined();
    expect(defined.body.data?.['defineKpi']).toEqual({
      code: 'checkout.revenue',
      name: 'Revenue',
      unit: 'EUR',
      aggregation: 'SUM',
      dimensions: ['country'],
      window: '24h',
    });
    const read = await platform.graphql(READ, { token: admin, variables: { code: 'checkout.revenue' } });
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual({
      kpi: { code: 'checkout.revenue', name: 'Revenue', unit: 'EUR' },
      kpis: [{ code: 'checkout.revenue' }],
    });
  });

  it('resolves fields of every subgraph for one KPI in one query', async () => {
    const { body } = await platform.graphql(
      `{ kpi(code: "checkout.revenue") { name current { value } series(timeRange: { start: "2026-11-01T00:00:00Z", end: "2026-11-02T00:00:00Z", interval: "1h" }) { value } insights { id } } }`,
      { token: admin },
    );
    expect(body.errors).toBeUndefined();
    // Nothing has been ingested or detected yet: a revenue of 0 in each of the 24 hourly buckets, no insights.
    expect(body.data).toEqual({
      kpi: {
        name: 'Revenue',
        current: { value: 0 },
        series: Array.from({ length: 24 }, () => ({ value: 0 })),
        insights: [],
      },
    });
  });

  it('answers large results from reused body buffers, each with its own bytes, in turn and concurrently', async () => {
    // Hourly series of 2 to 400 days: answers of about 4 KB to 680 KB, pooled from 32 KiB on (responseBuffers.test.ts shows a
    // buffer kept while a slow connection still holds it: loopback takes a whole answer at once).
    const bodyOf = (days: number) => {
      const end = new Date(Date.parse('2026-09-01T00:00:00Z') + days * 86_400_000).toISOString();
      return JSON.stringify({
        query: `{ kpi(code: "checkout.revenue") { series(timeRange: { start: "2026-09-01T00:00:00Z", end: "${end}", interval: "1h" }) { at value cursor } } }`,
      });
    };
    const series = async (days: number) => {
      const response = await fetch(platform.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: bodyOf(days),
      });
      return response.text();
    };
    const days = [400, 2, 60, 300, 45, 400, 14];
    const inTurn: string[] = [];
    for (const day of days) inTurn.push(await series(day));
    const points = (text: string) =>
      (JSON.parse(text) as { data: { kpi: { series: Array<{ value: number }> } } }).data.kpi.series;
    expect(inTurn.map((text) => points(text).length)).toEqual(days.map((day) => day * 24));
    expect(inTurn[0]!.length).toBeGreaterThan(600_000);
    expect(inTurn[5]).toBe(inTurn[0]);
    expect(responseBodyPool.keptBytes).toBeGreaterThan(0);
    const together = await Promise.all([...days, ...days].map(series));
    expect(together).toEqual([...inTurn, ...inTurn]);
  });

  it("sends one plan wave's fetches to a subgraph as one batched request (SUBGRAPH_BATCHING)", async () => {
    const requests = () => counterValue('pulsegraph_graphql_requests_total', { service: 'metrics' });
    const batched = () => counterValue('pulsegraph_subgraph_fetches_batched_total', { subgraph: 'metrics' });
    const [requestsBefore, batchedBefore] = [await requests(), await batched()];
    // One metadata fetch answers both lists; their two `current` fetches to metrics (different selections:
    // not shared) start together.
    const { body } = await platform.graphql(
      `{ a: kpis { code current { value } } b: kpis { name current { dimensions } } }`,
      { token: admin },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      a: [{ code: 'checkout.revenue', current: { value: 0 } }],
      b: [{ name: 'Revenue', current: { dimensions: null } }],
    });
    expect((await batched()) - batchedBefore).toBe(2);
    expect((await requests()) - requestsBefore).toBe(1);
  });

  it('shows another tenant none of it', async () => {
    const other = await platform.token('globex', ['admin']);
    const { body } = await platform.graphql(READ, { token: other, variables: { code: 'checkout.revenue' } });
    expect(body.data).toEqual({ kpi: null, kpis: [] });
  });

  it('refuses defineKpi to a viewer with FORBIDDEN and changes nothing', async () => {
    const viewer = await platform.token('acme', ['viewer']);
    const input = { code: 'checkout.revenue', name: 'Hijacked', eventName: 'x', aggregation: 'COUNT' };
    const { body } = await platform.graphql(DEFINE, { token: viewer, variables: { input } });
    expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const read = await platform.graphql(READ, { token: viewer, variables: { code: 'checkout.revenue' } });
    expect((read.body.data?.['kpi'] as { name: string }).name).toBe('Revenue');
  });

  it('refuses an ingest-only token reading KPIs', async () => {
    const ingest = await platform.token('acme', ['ingest']);
    const { body } = await platform.graphql(READ, { token: ingest, variables: { code: 'checkout.revenue' } });
    expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('answers a request without a token with 401 UNAUTHENTICATED', async () => {
    const { status, body } = await platform.graphql('{ kpis { code } }');
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('answers a forged token with 401 UNAUTHENTICATED', async () => {
    const [header, payload] = admin.split('.');
    const forged = `${header}.${payload}.${Buffer.from('not-a-signature').toString('base64url')}`;
    const { status, body } = await platform.graphql('{ kpis { code } }', { token: forged });
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('validates definitions with BAD_USER_INPUT naming the field', async () => {
    const cases = [
      [{ code: 'Bad Code', name: 'x', eventName: 'e', aggregation: 'COUNT' }, /code: expected lowercase/],
      [{ code: 'a.b', name: 'x', eventName: 'e', aggregation: 'SUM' }, /valueField: a SUM KPI needs/],
      [{ code: 'a.c', name: 'x', aggregation: 'FORMULA', formula: 'nope.kpi * 2' }, /unknown KPI "nope.kpi"/],
      [
        { code: 'a.d', name: 'x', aggregation: 'FORMULA', formula: 'checkout.revenue * (' },
        /formula: expected/,
      ],
    ] as const;
    for (const [input, message] of cases) {
      const { body } = await platform.graphql(DEFINE, { token: admin, variables: { input } });
      expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(body.errors?.[0]?.message).toMatch(message);
    }
  });

  it('refuses a formula that would close a cycle', async () => {
    const define = (code: string, formula: string) =>
      platform.graphql(DEFINE, {
        token: admin,
        variables: { input: { code, name: code, aggregation: 'FORMULA', formula } },
      });
    expect((await define('f.one', 'checkout.revenue * 2')).body.errors).toBeUndefined();
    expect((await define('f.two', 'f.one + 1')).body.errors).toBeUndefined();
    const { body } = await define('f.one', 'f.two / 2');
    expect(body.errors?.[0]?.message).toMatch(/cycle: f\.one -> f\.two -> f\.one/);
  });
});

describe('a subgraph that cannot be reached', () => {
  it('fails only its own fields, with SERVICE_UNAVAILABLE, while the rest of the query is served', async () => {
    const gateway = await gatewayWithout('reports');
    try {
      const response = await gateway.yoga.fetch('http://gateway/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query: '{ kpis { code } report(id: "r1") { name } }' }),
      });
      const body = (await response.json()) as {
        data: unknown;
        errors: Array<{ path: string[]; extensions: { code: string } }>;
      };
      expect(body.data).toMatchObject({
        kpis: expect.arrayContaining([{ code: 'checkout.revenue' }]) as unknown,
        report: null,
      });
      expect(body.errors).toMatchObject([
        { extensions: { code: 'SERVICE_UNAVAILABLE', serviceName: 'reports' } },
      ]);
    } finally {
      await gateway.close();
    }
  });
});

describe('KPI values without the metadata subgraph', () => {
  it('serves kpi(code) { series } from the metrics subgraph alone (one fetch), null for an unknown code', async () => {
    // metadata unreachable: what metrics resolves itself (kpi is shareable) must not need it.
    const gateway = await gatewayWithout('metadata');
    const ask = async (token: string, code: string) => {
      const response = await gateway.yoga.fetch('http://gateway/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({
          query: `query ($code: ID!) { kpi(code: $code) { code series(timeRange: { start: "2026-11-01T00:00:00Z", end: "2026-11-01T03:00:00Z", interval: "1h" }) { value } } }`,
          variables: { code },
        }),
      });
      return (await response.json()) as unknown;
    };
    try {
      expect(await ask(admin, 'checkout.revenue')).toEqual({
        data: { kpi: { code: 'checkout.revenue', series: [{ value: 0 }, { value: 0 }, { value: 0 }] } },
      });
      expect(await ask(admin, 'no.such.kpi')).toEqual({ data: { kpi: null } });
      // Another tenant's KPI of that code does not exist for this one.
      expect(await ask(await platform.token('globex', ['admin']), 'checkout.revenue')).toEqual({
        data: { kpi: null },
      });
    } finally {
      await gateway.close();
    }
  });
});

describe('definition changes on NATS', () => {
  it('announces each new version once on metadata.<tenant>.changed in the envelope of runtime.md', async () => {
    const nc = await connect({ servers: platform.config.NATS_URL! });
    try {
      const token = await platform.token('initech', ['analyst']);
      const input = {
        code: 'web.sessions',
        name: 'Sessions',
        eventName: 'session.started',
        aggregation: 'COUNT',
      };
      const first = await platform.graphql(DEFINE, { token, variables: { input } });
      expect(first.body.errors).toBeUndefined();
      // The same definition again is no change; a new name is version 2.
      await platform.graphql(DEFINE, { token, variables: { input } });
      await platform.graphql(DEFINE, { token, variables: { input: { ...input, name: 'Web sessions' } } });
      const consumer = await jetstream(nc).consumers.get('METADATA', {
        filter_subjects: 'metadata.initech.changed',
        deliver_policy: DeliverPolicy.All,
      });
      const messages = await consumer.fetch({ max_messages: 10, expires: 1_000 });
      const seen: Array<{
        tenant: string;
        event_type: string;
        payload: { code: string; version: number; name: string };
      }> = [];
      for await (const message of messages) seen.push(message.json());
      expect(
        seen.map((m) => [m.tenant, m.event_type, m.payload.code, m.payload.version, m.payload.name]),
      ).toEqual([
        ['initech', 'kpi.defined', 'web.sessions', 1, 'Sessions'],
        ['initech', 'kpi.defined', 'web.sessions', 2, 'Web sessions'],
      ]);
    } finally {
      await nc.close();
    }
  });
});

describe('subgraphs hold callers to the same rules when called directly', () => {
  for (const name of ['metadata', 'metrics', 'reports', 'insights'] as const) {
    it(`${name} refuses a request without a token`, async () => {
      const { status, body } = await platform.graphql('{ _service { sdl } }', {
        url: platform.subgraphUrls[name],
      });
      expect(status).toBe(401);
      expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    });
  }

  it('answers a batch (a JSON array of operations) with the array of results, each refused without a token', async () => {
    const batch = [
      { query: '{ kpis { code } }' },
      { query: 'query ($code: ID!) { kpi(code: $code) { name } }', variables: { code: 'checkout.revenue' } },
      { query: '{ kpis { nope } }' },
    ];
    const post = async (body: unknown, authorization?: string) => {
      const response = await fetch(platform.subgraphUrls.metadata, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify(body),
      });
      return {
        status: response.status,
        results: (await response.json()) as Array<{ data?: unknown; errors?: GraphQLFormattedError[] }>,
      };
    };
    const answered = await post(batch, `Bearer ${admin}`);
    expect(answered.status).toBe(200);
    expect(answered.results).toHaveLength(3);
    const { kpis } = answered.results[0]!.data as { kpis: Array<{ code: string }> };
    expect(kpis).toContainEqual({ code: 'checkout.revenue' });
    expect(answered.results[1]).toEqual({ data: { kpi: { name: 'Revenue' } } });
    expect(answered.results[2]!.errors?.[0]?.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
    // Every operation runs with its own context: each is refused, none answered with data.
    const refused = await post(batch.slice(0, 2));
    expect(refused.results).toHaveLength(2);
    for (const result of refused.results) {
      expect(result.data).toBeUndefined();
      expect(result.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
    }
  });

  it('refuses a subscription asked of a subgraph, pointing at the gateway that serves it', async () => {
    const asked = [
      ['metrics', 'subscription { kpiUpdated(codes: ["checkout.revenue"]) { value } }', 'kpiUpdated'],
      ['metrics', 'subscription { metricUpdates(names: ["checkout.revenue"]) { value } }', 'metricUpdates'],
      ['insights', 'subscription { newInsights(context: "checkout") { id } }', 'newInsights'],
    ] as const;
    for (const [name, query, field] of asked) {
      const { body } = await platform.graphql(query, { token: admin, url: platform.subgraphUrls[name] });
      expect(body.data ?? null).toBeNull();
      const [error] = body.errors ?? [];
      expect(error?.extensions?.['code']).toBe('NOT_IMPLEMENTED');
      expect(error?.message).toMatch(
        new RegExp(`^${field} is served by the gateway .*subscribe through the gateway$`),
      );
    }
  });

  it('metadata answers _entities only within the token tenant', async () => {
    const query = `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Kpi { code name } } }`;
    const variables = { r: [{ __typename: 'Kpi', code: 'checkout.revenue' }] };
    const own = await platform.graphql(query, {
      token: admin,
      variables,
      url: platform.subgraphUrls.metadata,
    });
    expect(own.body.data).toEqual({ _entities: [{ code: 'checkout.revenue', name: 'Revenue' }] });
    const other = await platform.token('globex', ['admin']);
    const theirs = await platform.graphql(query, {
      token: other,
      variables,
      url: platform.subgraphUrls.metadata,
    });
    expect(theirs.body.data).toEqual({ _entities: [null] });
  });
});

describe('the gateway schema', () => {
  it('has every type, field and argument of the contract (introspection)', async () => {
    const { body } = await platform.graphql(getIntrospectionQuery(), { token: admin });
    const ours = buildClientSchema(body.data as unknown as IntrospectionQuery);
    const contractSdl = readFileSync(new URL('../../shared/contract/api.graphql', import.meta.url), 'utf8');
    const contract = buildSchema(contractSdl.replace(/@key\([^)]*\)/g, ''));
    const missing: string[] = [];
    for (const type of Object.values(contract.getTypeMap())) {
      if (type.name.startsWith('__')) continue;
      const mine = ours.getType(type.name);
      if (!mine) missing.push(type.name);
      else if ('getFields' in type && 'getFields' in mine) {
        const fields = mine.getFields() as Record<string, { args?: Array<{ name: string }> }>;
        for (const [name, field] of Object.entries(
          type.getFields() as Record<string, { args?: Array<{ name: string }> }>,
        )) {
          if (!fields[name]) missing.push(`${type.name}.${name}`);
          for (const arg of field.args ?? []) {
            if (!fields[name]?.args?.some((a) => a.name === arg.name))
              missing.push(`${type.name}.${name}(${arg.name})`);
          }
        }
      }
    }
    expect(missing).toEqual([]);
    expect(Object.keys(contract.getTypeMap()).length).toBeGreaterThan(30);
  });

  it('allows anonymous introspection in dev mode only', async () => {
    const { status, body } = await platform.graphql('{ __schema { queryType { name } } }');
    expect(status).toBe(200);
    expect(body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });

  it('reports readiness of every subgraph, Postgres and NATS', async () => {
    const response = await fetch(new URL('/readyz', platform.gatewayUrl));
    const body = (await response.json()) as { checks: Record<string, boolean> };
    expect(response.status).toBe(200);
    expect(Object.keys(body.checks).sort()).toEqual([
      'insights',
      'metadata',
      'metrics',
      'nats',
      'postgres',
      'reports',
    ]);
  });
});
