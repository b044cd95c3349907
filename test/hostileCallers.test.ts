// Hostile callers over the real stack (issue #7): every kind of bad token is refused on every way in
// (GraphQL over HTTP, POST /events, report downloads, graphql-ws, SSE), and a valid token of another
// tenant, holding the ids of this one, sees and changes nothing of it in any query, mutation,
// subscription or download. After each case, the platform still answers.
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import type { RunningService } from '../lib/service.ts';
import { startReportWorker } from '../subgraphs/reports/worker.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import {
  publishInsight,
  publishKpiValues,
  sseSubscribe,
  wsClient,
  wsSubscribe,
} from './support/subscribers.ts';

const HOUR = 3_600_000;
const START = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;

let platform: TestPlatform;
let worker: RunningService;
let acme: string;
let globex: string;
let acmeReportId: string;
let acmeGenerationId: string;
let acmeAlertId: string;
let downloadUrl: URL;

async function graphql<T>(query: string, variables: Record<string, unknown>, token: string): Promise<T> {
  const { body } = await platform.graphql(query, { token, variables });
  expect(body.errors).toBeUndefined();
  return body.data as T;
}

/** The platform still serves: liveness, and a real query of a real tenant. */
async function stillServes(): Promise<void> {
  expect((await fetch(new URL('/healthz', platform.gatewayUrl))).status).toBe(200);
  const { body } = await platform.graphql('{ kpi(code: "orders") { code } }', { token: acme });
  expect(body).toEqual({ data: { kpi: { code: 'orders' } } });
}

/** Signs a token with the platform's own dev key, with the given claims and header overrides. */
async function signed(
  claims: Record<string, unknown>,
  options: { issuer?: string; audience?: string; expires?: number; notBefore?: number } = {},
): Promise<string> {
  const jwk = JSON.parse(await readFile(join(platform.dataDir, 'jwt-dev-key.json'), 'utf8')) as Record<
    string,
    string
  >;
  const key = await importJWK(jwk, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const token = new SignJWT({ tenant: 'acme', roles: ['admin'], ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'pulsegraph-dev' })
    .setSubject('mallory')
    .setIssuer(options.issuer ?? 'pulsegraph')
    .setAudience(options.audience ?? 'pulsegraph')
    .setIssuedAt()
    .setExpirationTime(options.expires ?? now + 600);
  if (options.notBefore !== undefined) token.setNotBefore(options.notBefore);
  return token.sign(key);
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

beforeAll(async () => {
  platform = await startTestPlatform({ workers: true });
  worker = await startReportWorker(platform.config, createLogger('report-worker', 'silent'));
  acme = await platform.token('acme', ['admin']);
  globex = await platform.token('globex', ['admin']);
  await graphql(
    `
      mutation ($input: KpiInput!) {
        defineKpi(input: $input) {
          code
        }
      }
    `,
    { input: { code: 'orders', name: 'Orders', eventName: 'order.placed', aggregation: 'COUNT' } },
    acme,
  );
  const events = Array.from({ length: 20 }, (_, i) => ({
    id: `o-${i}`,
    type: 'BUSINESS_EVENT',
    name: 'order.placed',
    source: 'web',
    timestamp: new Date(START + i * 60_000).toISOString(),
  }));
  await graphql(
    `
      mutation ($events: [EventInput!]!) {
        ingestEvents(events: $events) {
          accepted
        }
      }
    `,
    { events },
    acme,
  );
  const { defineAlert } = await graphql<{ defineAlert: { id: string } }>(
    `
      mutation {
        defineAlert(kpi: "orders", condition: ABOVE, value: 1000) {
          id
        }
      }
    `,
    {},
    acme,
  );
  acmeAlertId = defineAlert.id;
  const { createReport } = await graphql<{ createReport: { id: string } }>(
    `
      mutation ($input: CreateReportInput!) {
        createReport(input: $input) {
          id
        }
      }
    `,
    {
      input: {
        name: 'Orders',
        type: 'ADHOC',
        format: 'CSV',
        config: {
          metrics: ['orders'],
          timeRange: { start: new Date(START).toISOString(), end: new Date(START + 2 * HOUR).toISOString() },
        },
      },
    },
    acme,
  );
  acmeReportId = createReport.id;
  const { generateReport } = await graphql<{ generateReport: { id: string } }>(
    `
      mutation ($id: ID!) {
        generateReport(id: $id) {
          id
        }
      }
    `,
    { id: acmeReportId },
    acme,
  );
  acmeGenerationId = generateReport.id;
  const lastRun = async () =>
    (
      await graphql<{ report: { lastRun: { status: string; downloadUrl: string | null } | null } }>(
        `
          query ($id: ID!) {
            report(id: $id) {
              lastRun {
                status
                downloadUrl
              }
            }
          }
        `,
        { id: acmeReportId },
        acme,
      )
    ).report.lastRun;
  const deadline = Date.now() + 30_000;
  while ((await lastRun())?.status !== 'COMPLETED') {
    if (Date.now() > deadline)
      throw new Error(`the report did not complete: ${JSON.stringify(await lastRun())}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  downloadUrl = new URL((await lastRun())!.downloadUrl!, platform.gatewayUrl);
}, 90_000);
afterAll(async () => {
  await worker?.close();
  await platform?.stop();
});

describe('a bad token is refused on every way in', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<[string, () => string | undefined | Promise<string>]> = [
    ['no token', () => undefined],
    ['an expired token', () => signed({}, { expires: now() - 60 })],
    ['a token not yet valid', () => signed({}, { notBefore: now() + 600 })],
    ['a token for another audience', () => signed({}, { audience: 'someone-else' })],
    ['a token from another issuer', () => signed({}, { issuer: 'evil-idp' })],
    [
      'a forged signature (another key, the same kid)',
      async () => {
        const { privateKey } = await generateKeyPair('ES256', { extractable: true });
        const forged = await importJWK({ ...(await exportJWK(privateKey)) }, 'ES256');
        return new SignJWT({ tenant: 'acme', roles: ['admin'] })
          .setProtectedHeader({ alg: 'ES256', kid: 'pulsegraph-dev' })
          .setIssuer('pulsegraph')
          .setAudience('pulsegraph')
          .setExpirationTime('10m')
          .sign(forged);
      },
    ],
    [
      'alg: none',
      () => {
        const claims = {
          tenant: 'acme',
          roles: ['admin'],
          iss: 'pulsegraph',
          aud: 'pulsegraph',
          exp: now() + 600,
        };
        return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
      },
    ],
    [
      'a valid signature over a payload changed afterwards',
      async () => {
        const [header, , signature] = (await signed({ roles: ['viewer'] })).split('.');
        const claims = {
          tenant: 'acme',
          roles: ['admin'],
          iss: 'pulsegraph',
          aud: 'pulsegraph',
          exp: now() + 600,
        };
        return `${header}.${base64url(claims)}.${signature}`;
      },
    ],
    ['a tenant claim that is a NATS wildcard', () => signed({ tenant: 'acme.>' })],
    ['garbage', () => 'not-a-jwt'],
  ];

  it.each(cases)('%s', async (_name, make) => {
    const token = await make();
    const authorization: Record<string, string> =
      token === undefined ? {} : { authorization: `Bearer ${token}` };
    const query = await fetch(platform.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authorization },
      body: JSON.stringify({ query: '{ kpis { code } }' }),
    });
    expect(query.status).toBe(401);
    const body = (await query.json()) as { data?: unknown; errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0]!.extensions.code).toBe('UNAUTHENTICATED');
    expect(body.data ?? null).toBeNull();

    const ingest = await fetch(new URL('/events', platform.gatewayUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authorization },
      body: JSON.stringify([
        { type: 'BUSINESS_EVENT', name: 'order.placed', source: 'x', timestamp: new Date().toISOString() },
      ]),
    });
    expect(ingest.status).toBe(401);
    expect((await fetch(downloadUrl, { headers: authorization })).status).toBe(401);

    const sse = sseSubscribe(
      platform.gatewayUrl,
      token,
      'subscription { kpiUpdated(codes: ["orders"]) { value } }',
    );
    expect(await sse.status).toBe(401);

    const client = wsClient(platform.gatewayUrl, token);
    const ws = wsSubscribe(client, 'subscription { kpiUpdated(codes: ["orders"]) { value } }');
    await expect.poll(() => ws.errors.length).toBeGreaterThan(0);
    expect((ws.errors[0] as { code?: number }).code).toBe(4403);
    expect(ws.values).toEqual([]);
    await client.dispose();
    await stillServes();
  });
});

describe("another tenant's ids reach nothing", () => {
  const ask = async (query: string, variables: Record<string, unknown> = {}) =>
    (await platform.graphql(query, { token: globex, variables })).body;

  it('in every query', async () => {
    const range = { start: new Date(START).toISOString(), end: new Date(START + 2 * HOUR).toISOString() };
    expect(await ask('{ kpi(code: "orders") { code } kpis { code } reports { id } alerts { id } }')).toEqual({
      data: { kpi: null, kpis: [], reports: [], alerts: [] },
    });
    expect(await ask('query ($id: ID!) { report(id: $id) { id } }', { id: acmeReportId })).toEqual({
      data: { report: null },
    });
    expect(await ask('{ alerts(kpi: "orders") { id } insights(context: "orders") { id } }')).toEqual({
      data: { alerts: [], insights: [] },
    });
    const metrics = await ask(
      'query ($range: TimeRangeInput!) { metrics(names: ["orders"], timeRange: $range) { name value } }',
      { range },
    );
    expect(metrics.errors).toBeUndefined();
    expect(JSON.stringify(metrics.data)).not.toMatch(/"value":[1-9]/);
    await stillServes();
  });

  it('in every mutation, and the owner sees its data unchanged', async () => {
    const codes = async (query: string, variables: Record<string, unknown> = {}) =>
      (await ask(query, variables)).errors?.map((error) => error.extensions?.code);
    // Refused exactly as for a KPI that exists in no tenant: the answer tells nothing of other tenants.
    const alertOn = (kpi: string) =>
      ask(`mutation { defineAlert(kpi: "${kpi}", condition: ABOVE, value: 1) { id } }`);
    const theirs = await alertOn('orders');
    expect(theirs.errors?.map((error) => error.extensions?.code)).toEqual(['BAD_USER_INPUT']);
    expect(theirs.errors?.[0]?.message.replace('orders', '<kpi>')).toBe(
      (await alertOn('nowhere')).errors?.[0]?.message.replace('nowhere', '<kpi>'),
    );
    expect(await ask('mutation ($id: ID!) { deleteAlert(id: $id) }', { id: acmeAlertId })).toEqual({
      data: { deleteAlert: false },
    });
    expect(
      await codes('mutation ($id: ID!) { updateReport(id: $id, input: { name: "pwned" }) { id } }', {
        id: acmeReportId,
      }),
    ).toEqual(['NOT_FOUND']);
    expect(
      await codes('mutation ($id: ID!) { generateReport(id: $id) { id } }', { id: acmeReportId }),
    ).toEqual(['NOT_FOUND']);
    const owner = await graphql<{
      alerts: Array<{ id: string; value: number }>;
      report: { name: string; lastRun: { id: string } };
    }>(
      'query ($id: ID!) { alerts { id value } report(id: $id) { name lastRun { id } } }',
      { id: acmeReportId },
      acme,
    );
    expect(owner).toEqual({
      alerts: [{ id: acmeAlertId, value: 1000 }],
      report: { name: 'Orders', lastRun: { id: acmeGenerationId } },
    });
    await stillServes();
  });

  it('in every subscription: only its own values arrive', async () => {
    const client = wsClient(platform.gatewayUrl, globex);
    const kpis = wsSubscribe<{ value: number }>(
      client,
      'subscription { kpiUpdated(codes: ["orders"]) { value } }',
      {},
      'kpiUpdated',
    );
    const insights = wsSubscribe<{ id: string }>(
      client,
      'subscription { newInsights(context: "orders") { id } }',
      {},
      'newInsights',
    );
    const progress = wsSubscribe(client, 'subscription ($id: ID!) { reportProgress(id: $id) { status } }', {
      id: acmeReportId,
    });
    const sse = sseSubscribe<{ value: number }>(
      platform.gatewayUrl,
      globex,
      'subscription { kpiUpdated(codes: ["orders"]) { value } }',
      {},
      { field: 'kpiUpdated' },
    );
    try {
      expect(await sse.status).toBe(200);
      await expect.poll(() => progress.errors.length, { timeout: 10_000 }).toBe(1);
      expect(progress.errors[0]).toMatchObject({ extensions: { code: 'NOT_FOUND' } });
      await new Promise((resolve) => setTimeout(resolve, 500)); // both subscriptions are listening
      await publishKpiValues(platform.nats.url, 'acme', [{ code: 'orders', value: 666 }]);
      await publishInsight(platform.nats.url, 'acme', {
        id: 'acme-insight',
        context: 'orders',
        kind: 'anomaly',
        severity: 'WARNING',
        title: 'acme only',
        detail: null,
        kpi: { code: 'orders' },
        observed: 666,
        expected: 20,
        at: new Date().toISOString(),
      });
      await publishKpiValues(platform.nats.url, 'globex', [{ code: 'orders', value: 7 }]);
      await kpis.until(1);
      await sse.until(1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(kpis.values.map((v) => v.value)).toEqual([7]);
      expect(sse.values.map((v) => v.value)).toEqual([7]);
      expect(insights.values).toEqual([]);
    } finally {
      kpis.close();
      insights.close();
      sse.close();
      await client.dispose();
    }
    await stillServes();
  });

  it('in a report download, answered exactly like an id that does not exist', async () => {
    const headers = { authorization: `Bearer ${globex}` };
    const theirs = await fetch(downloadUrl, { headers });
    const unknownId = downloadUrl.href.replace(acmeGenerationId, '00000000-0000-4000-8000-000000000000');
    const nobodys = await fetch(unknownId, { headers });
    expect(theirs.status).toBe(404);
    expect(nobodys.status).toBe(404);
    const message = async (response: Response) =>
      ((await response.json()) as { errors: Array<{ message: string }> }).errors[0]!.message.replace(
        /[0-9a-f-]{36}/,
        '<id>',
      );
    expect(await message(theirs)).toBe(await message(nobodys));
    expect((await fetch(downloadUrl, { headers: { authorization: `Bearer ${acme}` } })).status).toBe(200);
    await stillServes();
  });
});
