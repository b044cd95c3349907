// Authorization declared in the schema (issue #7): @requiresScopes on the subgraphs' fields and entity
// types, checked per field at the gateway before any subgraph is called, and again by each subgraph for
// a request sent straight to it. The gateway under test reaches the real subgraphs through a proxy that
// counts every request, so that "no subgraph was called" is a number.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../gateway/gateway.ts';
import { createTokenVerifier, type Action, type Role } from '../lib/auth.ts';
import { signDevToken } from '../lib/devKeys.ts';
import { createLogger } from '../lib/logger.ts';
import { startCountingProxy, type CountingProxy } from './support/countingProxy.ts';
import { serveGateway } from './support/gatewayServer.ts';
import { startTestPlatform, type GraphQLBody, type TestPlatform } from './support/platform.ts';
import { publishKpiValues, sseSubscribe, wsClient, wsSubscribe } from './support/subscribers.ts';

type Subgraph = keyof TestPlatform['subgraphUrls'];

interface Refusal {
  message: string;
  path?: unknown[];
  extensions: { code: string; field?: string };
}
type Body = Omit<GraphQLBody, 'errors'> & { errors?: Refusal[] };

/** What runtime.md grants each role. */
const GRANTS: Record<Role, Action[]> = {
  viewer: ['read', 'subscribe'],
  analyst: ['read', 'subscribe', 'define', 'report'],
  ingest: ['ingest'],
  admin: ['read', 'subscribe', 'define', 'report', 'ingest'],
};
const ROLES = Object.keys(GRANTS) as Role[];

const RANGE = `{ start: "2026-11-01T00:00:00Z", end: "2026-11-02T00:00:00Z", interval: "1h" }`;
const CREATE_REPORT = `mutation { createReport(input: { name: "Orders", type: ADHOC, config: { metrics: ["orders"], timeRange: ${RANGE} } }) { id name } }`;

/** A representative query and mutation of each subgraph: the root field and the action it requires. */
const OPERATIONS: Array<{
  subgraph: Subgraph;
  field: string;
  action: Action;
  query: string;
}> = [
  {
    subgraph: 'metadata',
    field: 'Query.kpis',
    action: 'read',
    query: '{ kpis { code } }',
  },
  {
    subgraph: 'metadata',
    field: 'Mutation.defineKpi',
    action: 'define',
    query: `mutation { defineKpi(input: { code: "orders", name: "Orders", eventName: "orders.placed", aggregation: COUNT }) { code } }`,
  },
  {
    subgraph: 'metrics',
    field: 'Query.metrics',
    action: 'read',
    query: `{ metrics(names: ["orders"], timeRange: ${RANGE}) { value } }`,
  },
  {
    subgraph: 'metrics',
    field: 'Mutation.ingestEvents',
    action: 'ingest',
    query: 'mutation { ingestEvents(events: []) { accepted } }',
  },
  {
    subgraph: 'reports',
    field: 'Query.reports',
    action: 'read',
    query: '{ reports { id } }',
  },
  {
    subgraph: 'reports',
    field: 'Mutation.createReport',
    action: 'report',
    query: CREATE_REPORT,
  },
  {
    subgraph: 'insights',
    field: 'Query.alerts',
    action: 'read',
    query: '{ alerts { id } }',
  },
  {
    subgraph: 'insights',
    field: 'Mutation.defineAlert',
    action: 'define',
    query: 'mutation { defineAlert(kpi: "orders", condition: ABOVE, value: 10) { id } }',
  },
];

/** A subscription of each subgraph that has one. */
const SUBSCRIPTIONS = [
  {
    field: 'Subscription.kpiUpdated',
    query: 'subscription { kpiUpdated(codes: ["orders"]) { value } }',
  },
  {
    field: 'Subscription.newInsights',
    query: 'subscription { newInsights(context: "orders") { id } }',
  },
  {
    field: 'Subscription.reportProgress',
    query: 'subscription { reportProgress(id: "r1") { status } }',
  },
];

/** The refusals a role meets: its operation's root field, unless runtime.md grants the role its action. */
const deniedTo = (role: Role, operation: (typeof OPERATIONS)[number]) =>
  GRANTS[role].includes(operation.action) ? [] : [refusal(operation.action, role, operation.field)];

function refusal(action: Action, role: Role, field: string) {
  return {
    message: `not allowed to ${action}: roles [${role}] do not grant it`,
    extensions: { code: 'FORBIDDEN', field },
  };
}

let platform: TestPlatform;
let tokens: Record<Role, string>;
let proxy: CountingProxy;
let gateway: Gateway;
let served: { close(): Promise<void> } | undefined;
let gatewayUrl: string;

/** POSTs an operation to `url` (the gateway under test by default) with the token. */
async function post(
  query: string,
  token: string,
  url = gatewayUrl,
  variables?: Record<string, unknown>,
): Promise<{ status: number; body: Body }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as Body };
}

/** Runs an operation as the admin through the platform's gateway and returns its data. */
async function adminData(query: string): Promise<Record<string, unknown>> {
  const { body } = await post(query, tokens.admin, platform.gatewayUrl);
  expect(body.errors).toBeUndefined();
  return body.data!;
}

beforeAll(async () => {
  platform = await startTestPlatform();
  tokens = Object.fromEntries(
    await Promise.all(ROLES.map(async (role) => [role, await platform.token('acme', [role])])),
  ) as Record<Role, string>;
  proxy = await startCountingProxy(platform.subgraphUrls);
  const verifier = await createTokenVerifier(platform.config);
  const logger = createLogger('gateway', 'silent');
  gateway = createGateway({
    supergraphSdl: readFileSync('supergraph.graphql', 'utf8'),
    subgraphUrls: Object.fromEntries(Object.keys(platform.subgraphUrls).map((n) => [n, proxy.urlOf(n)])),
    verifier,
    logger,
    production: false,
    allowAnonymousIntrospection: true,
    subgraphTimeoutMs: 5_000,
  });
  const serving = await serveGateway(gateway, verifier, logger);
  served = serving;
  gatewayUrl = serving.url;
  await adminData(OPERATIONS[1]!.query);
}, 60_000);

afterAll(async () => {
  await served?.close();
  await gateway?.close();
  await proxy?.close();
  await platform?.stop();
});

beforeEach(() => {
  proxy.calls = 0;
});

describe('through the gateway', () => {
  it('serves each role exactly what runtime.md grants, and refuses the rest with 403 before calling any subgraph', async () => {
    for (const operation of OPERATIONS) {
      for (const role of ROLES) {
        proxy.calls = 0;
        const { status, body } = await post(operation.query, tokens[role]);
        const rootField = operation.field.split('.')[1]!;
        const expected = deniedTo(role, operation);
        if (expected.length === 0) {
          expect({ role, field: operation.field, errors: body.errors }).toEqual({
            role,
            field: operation.field,
            errors: undefined,
          });
          expect(status).toBe(200);
          expect(body.data?.[rootField]).toBeDefined();
          expect(proxy.calls).toBeGreaterThan(0);
          continue;
        }
        expect({ role, status, body, subgraphCalls: proxy.calls }).toMatchObject({
          role,
          status: 403,
          body: { errors: expected },
          subgraphCalls: 0,
        });
        expect(body.errors).toHaveLength(expected.length);
        expect(body.data).toBeUndefined();
      }
    }
  });

  it('finds a refused field inside fragments, and names each refused field once', async () => {
    const hidden = `{ ...Reads } fragment Reads on Query { ... on Query { alerts { id } again: alerts { id } } }`;
    const { status, body } = await post(hidden, tokens.ingest);
    expect(status).toBe(403);
    expect(body.errors).toMatchObject([refusal('read', 'ingest', 'Query.alerts')]);
    expect(body.errors).toHaveLength(1);
    expect(proxy.calls).toBe(0);
  });

  it('counts the token scopes claim beside its roles', async () => {
    const token = await signDevToken(platform.dataDir, {
      tenant: 'acme',
      roles: ['viewer'],
      scopes: ['define'],
    });
    const define = await post(OPERATIONS[1]!.query, token);
    expect(define.body).toEqual({ data: { defineKpi: { code: 'orders' } } });
    const report = await post(CREATE_REPORT, token);
    expect(report.status).toBe(403);
    expect(report.body.errors).toMatchObject([
      {
        message: 'not allowed to report: roles [viewer] and scopes [define] do not grant it',
        extensions: { code: 'FORBIDDEN', field: 'Mutation.createReport' },
      },
    ]);
  });

  it('refuses a subscription to a role that may not subscribe, over graphql-ws and SSE, before any subgraph', async () => {
    const client = wsClient(gatewayUrl, tokens.ingest);
    for (const { field, query } of SUBSCRIPTIONS) {
      const expected = [refusal('subscribe', 'ingest', field)];
      const ws = wsSubscribe(client, query);
      const sse = sseSubscribe(gatewayUrl, tokens.ingest, query);
      expect(await sse.status).toBe(403);
      await expect.poll(() => ws.errors.length + sse.errors.length).toBe(2 * expected.length);
      for (const errors of [ws.errors, sse.errors]) expect(errors).toMatchObject(expected);
      ws.close();
      sse.close();
    }
    await client.dispose();
    expect(proxy.calls).toBe(0);
  });

  // Through the platform's own gateway: it consumes the KPI stream, and reaches reports over graphql-ws.
  it('serves subscriptions to a role that may subscribe', async () => {
    await publishKpiValues(platform.nats.url, 'acme', [{ code: 'orders', value: 7 }]);
    const client = wsClient(platform.gatewayUrl, tokens.viewer);
    const live = wsSubscribe<{ value: number }>(client, SUBSCRIPTIONS[0]!.query, {}, 'kpiUpdated');
    expect(await live.until(1)).toEqual([{ value: 7 }]);
    live.close();
    const { createReport } = (await adminData(CREATE_REPORT)) as { createReport: { id: string } };
    await adminData(`mutation { generateReport(id: "${createReport.id}") { id } }`);
    const progress = wsSubscribe<{ status: string }>(
      client,
      `subscription { reportProgress(id: "${createReport.id}") { status } }`,
      {},
      'reportProgress',
    );
    expect(await progress.until(1)).toEqual([{ status: 'QUEUED' }]);
    progress.close();
    await client.dispose();
  });
});

describe('straight to a subgraph', () => {
  it('refuses what the role does not grant with the same FORBIDDEN, and serves what it does', async () => {
    for (const operation of OPERATIONS) {
      const url = platform.subgraphUrls[operation.subgraph];
      const rootField = operation.field.split('.')[1]!;
      for (const role of ROLES) {
        const { body } = await post(operation.query, tokens[role], url);
        const denied = deniedTo(role, operation);
        if (denied.length === 0) {
          expect({ role, field: operation.field, errors: body.errors }).toEqual({
            role,
            field: operation.field,
            errors: undefined,
          });
          expect(body.data?.[rootField]).toBeDefined();
        } else {
          // The first refusal is the subgraph's too; it stops there, so it reports only that one.
          expect({ role, field: operation.field, errors: body.errors }).toMatchObject({
            role,
            field: operation.field,
            errors: [{ message: denied[0]!.message, extensions: { code: 'FORBIDDEN' } }],
          });
          expect(body.errors).toHaveLength(1);
        }
      }
    }
  });

  it('changes nothing when a mutation is refused', async () => {
    const before = await adminData('{ kpis { code name } reports { id } alerts { id severity } }');
    const attempts: Array<[Subgraph, string]> = [
      [
        'metadata',
        `mutation { defineKpi(input: { code: "orders", name: "Hijacked", eventName: "x", aggregation: COUNT }) { code } }`,
      ],
      ['reports', CREATE_REPORT],
      [
        'insights',
        'mutation { defineAlert(kpi: "orders", condition: ABOVE, value: 10, severity: CRITICAL) { id } }',
      ],
    ];
    for (const [subgraph, query] of attempts) {
      const { body } = await post(query, tokens.viewer, platform.subgraphUrls[subgraph]);
      expect(body.errors?.[0]?.extensions.code).toBe('FORBIDDEN');
    }
    expect(await adminData('{ kpis { code name } reports { id } alerts { id severity } }')).toEqual(before);
  });

  it('refuses entity references of a type that requires read, item by item', async () => {
    const { createReport } = (await adminData(CREATE_REPORT)) as { createReport: { id: string } };
    const references: Array<[Subgraph, Record<string, unknown>, string]> = [
      ['metadata', { __typename: 'Kpi', code: 'orders' }, '... on Kpi { code name }'],
      ['insights', { __typename: 'Kpi', code: 'orders' }, '... on Kpi { code alerts { id } }'],
      ['reports', { __typename: 'Report', id: createReport.id }, '... on Report { id }'],
    ];
    for (const [subgraph, representation, selection] of references) {
      const query = `query ($r: [_Any!]!) { _entities(representations: $r) { ${selection} } }`;
      const url = platform.subgraphUrls[subgraph];
      const refused = await post(query, tokens.ingest, url, { r: [representation] });
      // mercurius spells the item's index as a string.
      const paths = refused.body.errors?.map((error) => error.path?.map(String));
      expect({ subgraph, body: refused.body, paths }).toMatchObject({
        subgraph,
        body: {
          data: { _entities: [null] },
          errors: [
            {
              message: 'not allowed to read: roles [ingest] do not grant it',
              extensions: { code: 'FORBIDDEN' },
            },
          ],
        },
        paths: [['_entities', '0']],
      });
      const served = await post(query, tokens.viewer, url, { r: [representation] });
      expect({ subgraph, errors: served.body.errors }).toEqual({ subgraph, errors: undefined });
    }
  });

  it('counts the token scopes claim beside its roles', async () => {
    const token = await signDevToken(platform.dataDir, { tenant: 'acme', roles: [], scopes: ['read'] });
    const { body } = await post('{ kpis { code } }', token, platform.subgraphUrls.metadata);
    expect(body).toEqual({ data: { kpis: [{ code: 'orders' }] } });
    const refused = await post(OPERATIONS[1]!.query, token, platform.subgraphUrls.metadata);
    expect(refused.body.errors).toMatchObject([
      { message: 'not allowed to define: roles [] and scopes [read] do not grant it' },
    ]);
  });
});

describe('a type that requires read', () => {
  it('holds every field returning it: define without read is refused before the mutation runs, at both ends', async () => {
    const token = await signDevToken(platform.dataDir, { tenant: 'acme', roles: [], scopes: ['define'] });
    const define = `mutation { defineKpi(input: { code: "scoped.only", name: "S", eventName: "e", aggregation: COUNT }) { code } }`;
    const expected = {
      message: 'not allowed to read: roles [] and scopes [define] do not grant it',
      extensions: { code: 'FORBIDDEN' },
    };
    const viaGateway = await post(define, token);
    expect({
      status: viaGateway.status,
      errors: viaGateway.body.errors,
      subgraphCalls: proxy.calls,
    }).toMatchObject({
      status: 403,
      errors: [{ ...expected, extensions: { code: 'FORBIDDEN', field: 'Mutation.defineKpi' } }],
      subgraphCalls: 0,
    });
    const direct = await post(define, token, platform.subgraphUrls.metadata);
    expect(direct.body).toMatchObject({ data: null, errors: [{ ...expected, path: ['defineKpi'] }] });
    expect(await adminData('{ kpi(code: "scoped.only") { code } }')).toEqual({ kpi: null });
  });
});
