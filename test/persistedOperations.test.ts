// Persisted operations (issue #7) over the real platform. The platform's own gateway keeps APQ in the
// suite's Redis: unknown hash, registration, hash alone, over HTTP POST and GET (and graphql-ws and SSE).
// A second gateway, started by startGateway with PERSISTED_ONLY=true over a manifest written here,
// refuses every other operation over HTTP, graphql-ws and SSE and serves the manifest's, by id and by
// text, a live subscription included.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client, SubscribePayload } from 'graphql-ws';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../gateway/persistedOperations.ts';
import { startGateway } from '../gateway/server.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import type { RunningService } from '../lib/service.ts';
import { startTestPlatform, type GraphQLBody, type TestPlatform } from './support/platform.ts';
import { services } from './support/services.ts';
import { gatewayMetric, publishKpiValues, sseSubscribe, wsClient } from './support/subscribers.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

const KPIS = 'query Kpis { kpis { code name } }';
const LIVE = 'subscription Live($codes: [ID!]!) { kpiUpdated(codes: $codes) { value kpi { code name } } }';
const UNKNOWN = '{ kpis { code } }';
const INTROSPECTION = '{ __schema { queryType { name } } }';

interface Answer {
  status: number;
  body: GraphQLBody & { errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
}

let platform: TestPlatform;
let admin: string;
let viewer: string;
let dir: string;
let persistedOnly: RunningService;
let redis: Redis;

const apq = (sha256Hash: string) => ({ persistedQuery: { version: 1, sha256Hash } });
/** A query nobody registered yet (the suite's Redis outlives a run of this file). */
const fresh = () => `query Fresh_${randomUUID().replaceAll('-', '')} { kpis { code } }`;
const codeOf = (answer: Answer) => answer.body.errors?.[0]?.extensions?.['code'];
const apqMetric = (outcome: string) =>
  gatewayMetric(platform.gatewayUrl, `pulsegraph_persisted_operations_total{outcome="${outcome}"}`);

async function post(
  url: string,
  body: Record<string, unknown>,
  token: string | null = admin,
): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

/** A GET with each parameter in the query string (objects as JSON), as Apollo's clients send hashed queries. */
async function get(url: string, params: Record<string, unknown>): Promise<Answer> {
  const search = new URLSearchParams(
    Object.entries(params).map(([name, value]) => [
      name,
      typeof value === 'string' ? value : JSON.stringify(value),
    ]),
  );
  const response = await fetch(`${url}?${search}`, { headers: { authorization: `Bearer ${admin}` } });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

/** One operation over graphql-ws with any payload: the first result, or the errors refusing it. */
function wsOnce(
  client: Client,
  payload: Record<string, unknown>,
): Promise<{ data?: unknown; errors?: unknown[] }> {
  return new Promise((resolve) => {
    const stop = client.subscribe(payload as unknown as SubscribePayload, {
      next: (result) => {
        stop();
        resolve(result as { data?: unknown; errors?: unknown[] });
      },
      error: (error) => resolve({ errors: Array.isArray(error) ? (error as unknown[]) : [error] }),
      complete: () => undefined,
    });
  });
}

/** One operation over SSE with any JSON body: the HTTP status and the first `next` event's result. */
async function sseOnce(
  url: string,
  body: Record<string, unknown>,
): Promise<{ status: number; result: Answer['body'] }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      accept: 'text/event-stream',
      'content-type': 'application/json',
      authorization: `Bearer ${viewer}`,
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) return { status: response.status, result: JSON.parse(text) as Answer['body'] };
  const data = /event: next\ndata: (.*)\n/.exec(text)?.[1];
  return { status: response.status, result: JSON.parse(data ?? 'null') as Answer['body'] };
}

beforeAll(async () => {
  platform = await startTestPlatform();
  admin = await platform.token('acme', ['admin']);
  viewer = await platform.token('acme', ['viewer']);
  const defined = await platform.graphql(
    'mutation { defineKpi(input: { code: "orders", name: "Orders", eventName: "order.placed", aggregation: COUNT }) { code } }',
    { token: admin },
  );
  expect(defined.body.errors).toBeUndefined();
  redis = new Redis(services().redisUrl);

  dir = await scratchDir('persisted');
  const manifestPath = join(dir, 'persisted-documents.json');
  // The codegen manifest's shape: SHA-256 hex of each document's text -> the text.
  await writeFile(manifestPath, JSON.stringify({ [sha256Hex(KPIS)]: KPIS, [sha256Hex(LIVE)]: LIVE }));
  const config = loadConfig({
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
    PERSISTED_OPERATIONS_PATH: manifestPath,
  });
  persistedOnly = await startGateway(config, createLogger('gateway', 'silent'));
}, 60_000);

afterAll(async () => {
  await persistedOnly?.close();
  redis?.disconnect();
  await platform?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('automatic persisted queries (the platform gateway, APQ in Redis)', () => {
  it('POST: an unknown hash is 404 PERSISTED_QUERY_NOT_FOUND; the query with its hash registers it in Redis; then the hash alone runs it', async () => {
    const query = fresh();
    const hash = sha256Hex(query);
    const [hits, misses] = [await apqMetric('apq_hit'), await apqMetric('apq_miss')];

    const miss = await post(platform.gatewayUrl, { extensions: apq(hash) });
    expect(miss).toMatchObject({
      status: 404,
      body: {
        errors: [{ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }],
      },
    });
    expect(await redis.exists(`apq:${hash}`)).toBe(0);

    const registered = await post(platform.gatewayUrl, { query, extensions: apq(hash) });
    expect(registered).toEqual({ status: 200, body: { data: { kpis: [{ code: 'orders' }] } } });
    expect(await redis.get(`apq:${hash}`)).toBe(query);
    expect(await redis.ttl(`apq:${hash}`)).toBeGreaterThan(0);

    const byHash = await post(platform.gatewayUrl, { extensions: apq(hash) });
    expect(byHash).toEqual(registered);
    expect(await apqMetric('apq_miss')).toBe(misses + 1);
    expect(await apqMetric('apq_hit')).toBe(hits + 1);
  });

  it('GET: the same round trip, with the hash in the query string', async () => {
    const query = fresh();
    const extensions = apq(sha256Hex(query));
    const miss = await get(platform.gatewayUrl, { extensions });
    expect(miss.status).toBe(404);
    expect(codeOf(miss)).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect(await get(platform.gatewayUrl, { query, extensions })).toEqual({
      status: 200,
      body: { data: { kpis: [{ code: 'orders' }] } },
    });
    expect(await get(platform.gatewayUrl, { extensions })).toEqual({
      status: 200,
      body: { data: { kpis: [{ code: 'orders' }] } },
    });
  });

  it('refuses a hash that is not the query SHA-256 with 400 PERSISTED_QUERY_HASH_MISMATCH, and registers nothing', async () => {
    const query = fresh();
    const wrong = sha256Hex(fresh());
    const refused = await post(platform.gatewayUrl, { query, extensions: apq(wrong) });
    expect(refused.status).toBe(400);
    expect(refused.body.data).toBeUndefined();
    expect(refused.body.errors).toMatchObject([
      {
        message: `expected extensions.persistedQuery.sha256Hash to be the SHA-256 of the query, ${sha256Hex(query)}, but got ${wrong}`,
        extensions: { code: 'PERSISTED_QUERY_HASH_MISMATCH' },
      },
    ]);
    expect(await redis.exists(`apq:${wrong}`, `apq:${sha256Hex(query)}`)).toBe(0);
  });

  it('registers only a document that validates, and only for an authenticated caller', async () => {
    const invalid = `query Invalid_${randomUUID().replaceAll('-', '')} { noSuchField }`;
    const refused = await post(platform.gatewayUrl, { query: invalid, extensions: apq(sha256Hex(invalid)) });
    expect(codeOf(refused)).toBe('GRAPHQL_VALIDATION_FAILED');
    const anonymousQuery = fresh();
    const anonymous = await post(
      platform.gatewayUrl,
      { query: anonymousQuery, extensions: apq(sha256Hex(anonymousQuery)) },
      null,
    );
    expect(anonymous.status).toBe(401);
    expect(await redis.exists(`apq:${sha256Hex(invalid)}`, `apq:${sha256Hex(anonymousQuery)}`)).toBe(0);
  });

  it('runs a document registered over HTTP by its hash alone over graphql-ws and SSE', async () => {
    const query = fresh();
    const extensions = apq(sha256Hex(query));
    expect((await post(platform.gatewayUrl, { query, extensions })).status).toBe(200);
    const client = wsClient(platform.gatewayUrl, viewer);
    try {
      // graphql-ws requires a query string: "" sends none.
      expect(await wsOnce(client, { query: '', extensions })).toEqual({
        data: { kpis: [{ code: 'orders' }] },
      });
      const unknown = await wsOnce(client, { query: '', extensions: apq(sha256Hex(fresh())) });
      expect(unknown.errors).toMatchObject([{ extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }]);
    } finally {
      await client.dispose();
    }
    expect(await sseOnce(platform.gatewayUrl, { extensions })).toEqual({
      status: 200,
      result: { data: { kpis: [{ code: 'orders' }] } },
    });
  });
});

describe('PERSISTED_ONLY=true', () => {
  const served = { data: { kpis: [{ code: 'orders', name: 'Orders' }] } };

  it('HTTP: refuses an unknown operation, introspection and APQ registration with 403 PERSISTED_QUERY_NOT_ALLOWED', async () => {
    const unknown = await post(persistedOnly.url, { query: UNKNOWN });
    expect(unknown).toMatchObject({
      status: 403,
      body: {
        errors: [
          {
            message:
              'only persisted operations run here: send a documentId from the manifest, or its exact text',
            extensions: { code: 'PERSISTED_QUERY_NOT_ALLOWED' },
          },
        ],
      },
    });
    expect(unknown.body.data).toBeUndefined();
    for (const token of [admin, null]) {
      const introspection = await post(persistedOnly.url, { query: INTROSPECTION }, token);
      expect([introspection.status, codeOf(introspection)]).toEqual([403, 'PERSISTED_QUERY_NOT_ALLOWED']);
    }
    const query = fresh();
    const registration = await post(persistedOnly.url, { query, extensions: apq(sha256Hex(query)) });
    expect([registration.status, codeOf(registration)]).toEqual([403, 'PERSISTED_QUERY_NOT_ALLOWED']);
    expect(await redis.exists(`apq:${sha256Hex(query)}`)).toBe(0);
    const byGet = await get(persistedOnly.url, { query: UNKNOWN });
    expect([byGet.status, codeOf(byGet)]).toEqual([403, 'PERSISTED_QUERY_NOT_ALLOWED']);
  });

  it('HTTP: serves a manifest operation by documentId (POST and GET), by APQ hash and by its full text', async () => {
    const id = sha256Hex(KPIS);
    expect(await post(persistedOnly.url, { documentId: id })).toEqual({ status: 200, body: served });
    expect(await post(persistedOnly.url, { documentId: `sha256:${id}` })).toEqual({
      status: 200,
      body: served,
    });
    expect(await get(persistedOnly.url, { documentId: id })).toEqual({ status: 200, body: served });
    expect(await post(persistedOnly.url, { extensions: apq(id) })).toEqual({ status: 200, body: served });
    expect(await post(persistedOnly.url, { query: KPIS })).toEqual({ status: 200, body: served });
    expect(await get(persistedOnly.url, { query: KPIS })).toEqual({ status: 200, body: served });
  });

  it('HTTP: answers an id outside the manifest with 404 PERSISTED_QUERY_NOT_FOUND, even one registered by APQ elsewhere', async () => {
    const query = fresh();
    expect((await post(platform.gatewayUrl, { query, extensions: apq(sha256Hex(query)) })).status).toBe(200);
    const unknown = await post(persistedOnly.url, { extensions: apq(sha256Hex(query)) });
    expect([unknown.status, codeOf(unknown)]).toEqual([404, 'PERSISTED_QUERY_NOT_FOUND']);
    const byId = await post(persistedOnly.url, { documentId: 'sha256:0000' });
    expect([byId.status, codeOf(byId)]).toEqual([404, 'PERSISTED_QUERY_NOT_FOUND']);
  });

  it('graphql-ws: refuses an unknown operation, and serves the manifest by text and by id, a live subscription included', async () => {
    const client = wsClient(persistedOnly.url, viewer);
    try {
      for (const payload of [{ query: UNKNOWN }, { query: INTROSPECTION }]) {
        const refused = await wsOnce(client, payload);
        expect(refused.errors).toMatchObject([{ extensions: { code: 'PERSISTED_QUERY_NOT_ALLOWED' } }]);
      }
      expect(await wsOnce(client, { query: KPIS })).toEqual(served);
      expect(await wsOnce(client, { query: '', documentId: sha256Hex(KPIS) })).toEqual(served);

      await publishKpiValues(platform.nats.url, 'acme', [{ code: 'orders', value: 1 }]);
      const values: unknown[] = [];
      const errors: unknown[] = [];
      const stop = client.subscribe(
        { query: '', variables: { codes: ['orders'] }, extensions: apq(sha256Hex(LIVE)) },
        {
          next: (result) => void (result.errors ? errors.push(...result.errors) : values.push(result.data)),
          error: (error) => errors.push(error),
          complete: () => undefined,
        },
      );
      await expect.poll(() => values.length + errors.length, { timeout: 15_000 }).toBeGreaterThan(0);
      await publishKpiValues(platform.nats.url, 'acme', [{ code: 'orders', value: 2 }]);
      await expect.poll(() => values.length + errors.length, { timeout: 15_000 }).toBeGreaterThan(1);
      stop();
      expect(errors).toEqual([]);
      expect(values).toEqual([
        { kpiUpdated: { value: 1, kpi: { code: 'orders', name: 'Orders' } } },
        { kpiUpdated: { value: 2, kpi: { code: 'orders', name: 'Orders' } } },
      ]);
    } finally {
      await client.dispose();
    }
  });

  it('SSE: refuses an unknown operation with 403, and serves a manifest query by id and a manifest subscription by its text', async () => {
    const refused = await sseOnce(persistedOnly.url, { query: UNKNOWN });
    expect(refused.status).toBe(403);
    expect(refused.result.errors).toMatchObject([{ extensions: { code: 'PERSISTED_QUERY_NOT_ALLOWED' } }]);
    expect(await sseOnce(persistedOnly.url, { documentId: sha256Hex(KPIS) })).toEqual({
      status: 200,
      result: served,
    });

    await publishKpiValues(platform.nats.url, 'acme', [{ code: 'orders', value: 3 }]);
    const live = sseSubscribe<{ value: number }>(
      persistedOnly.url,
      viewer,
      LIVE,
      { codes: ['orders'] },
      { field: 'kpiUpdated' },
    );
    try {
      expect(await live.status).toBe(200);
      const [snapshot] = await live.until(1);
      expect(snapshot?.value).toBe(3);
    } finally {
      live.close();
    }
  });

  it('refuses to start without a readable manifest, with one line naming the setting', async () => {
    const missing = join(dir, 'missing.json');
    const child = spawn(process.execPath, ['gateway/server.ts'], {
      env: {
        ...process.env,
        NODE_ENV: 'test',
        AUTH_MODE: 'dev',
        DATA_DIR: dir,
        GATEWAY_PORT: '0',
        PERSISTED_ONLY: 'true',
        PERSISTED_OPERATIONS_PATH: missing,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      `pulsegraph: invalid setting PERSISTED_OPERATIONS_PATH: PERSISTED_ONLY=true needs the persisted-operation manifest (npm run codegen writes it), but ${missing} cannot be read (ENOENT)\n`,
    );
  });
});
