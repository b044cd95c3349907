// Hostile and careless input over the real stack (issue #7): oversized, malformed, mistyped, too deep,
// too wide and too many, each refused with its status and code, with the platform still serving after;
// and what a browser relies on: CORS for the allow-listed origin only, CSRF refusal of unpreflighted
// requests, security headers on every answer.
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { publishKpiValues, wsClient, wsSubscribe } from './support/subscribers.ts';

const APP = 'https://app.example';

let platform: TestPlatform;
let admin: string;
let events: URL;

interface Answer {
  status: number;
  headers: Headers;
  body: { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> };
}

async function send(url: URL | string, init: RequestInit): Promise<Answer> {
  const response = await fetch(url, init);
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? (JSON.parse(text) as Answer['body']) : {},
  };
}

/** POSTs a raw body to /graphql with the admin's token. */
const postGraphql = (body: BodyInit, contentType = 'application/json', extra: Record<string, string> = {}) =>
  send(platform.gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': contentType, authorization: `Bearer ${admin}`, ...extra },
    body,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  });

const codeOf = (answer: Answer) => answer.body.errors?.[0]?.extensions?.code;

/** The platform still serves: liveness, and a real query. */
async function stillServes(): Promise<void> {
  expect((await fetch(new URL('/healthz', platform.gatewayUrl))).status).toBe(200);
  const { body } = await platform.graphql('{ kpis { code } }', { token: admin });
  expect(body).toEqual({ data: { kpis: [{ code: 'orders' }] } });
}

/** A body streamed in chunks, with no Content-Length. */
function chunked(bytes: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const chunk = new Uint8Array(Math.min(65_536, bytes - sent)).fill(0x20);
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

beforeAll(async () => {
  platform = await startTestPlatform({ env: { CORS_ORIGINS: APP } });
  admin = await platform.token('acme', ['admin']);
  events = new URL('/events', platform.gatewayUrl);
  const { body } = await platform.graphql(
    'mutation { defineKpi(input: { code: "orders", name: "Orders", eventName: "order.placed", aggregation: COUNT }) { code } }',
    { token: admin },
  );
  expect(body.errors).toBeUndefined();
}, 60_000);
afterAll(() => platform?.stop());

describe('operations too big for their own good', () => {
  it('refuses a query 50 levels deep through Kpi.insights.kpi with 400 MAX_DEPTH_EXCEEDED', async () => {
    let selection = 'code';
    for (let level = 0; level < 25; level++) selection = `insights { kpi { ${selection} } }`;
    const answer = await postGraphql(JSON.stringify({ query: `{ kpi(code: "orders") { ${selection} } }` }));
    expect(answer.status).toBe(400);
    expect(codeOf(answer)).toBe('MAX_DEPTH_EXCEEDED');
    await stillServes();
  });

  it('refuses 3,000 aliases with 400, at the lexer before anything is parsed', async () => {
    const aliases = Array.from({ length: 3_000 }, (_, i) => `a${i}: kpis { code }`).join(' ');
    const answer = await postGraphql(JSON.stringify({ query: `{ ${aliases} }` }));
    expect(answer.status).toBe(400);
    expect(codeOf(answer)).toBe('MAX_TOKENS_EXCEEDED');
    const fewer = Array.from({ length: 300 }, (_, i) => `a${i}: kpis { code }`).join(' ');
    const counted = await postGraphql(JSON.stringify({ query: `{ ${fewer} }` }));
    expect(counted.status).toBe(400);
    expect(codeOf(counted)).toBe('MAX_ALIASES_EXCEEDED');
    await stillServes();
  });

  it('refuses an 8 MiB body with 413, declared or chunked, on /graphql, SSE and /events', async () => {
    const big = `{"query":"{ kpis { code } }","padding":"${'x'.repeat(8 * 1024 * 1024)}"}`;
    const declared = await postGraphql(big);
    expect(declared.status).toBe(413);
    expect(codeOf(declared)).toBe('PAYLOAD_TOO_LARGE');
    const streamed = await postGraphql(chunked(8 * 1024 * 1024));
    expect(streamed.status).toBe(413);
    expect(codeOf(streamed)).toBe('PAYLOAD_TOO_LARGE');
    const sse = await postGraphql(big, 'application/json', { accept: 'text/event-stream' });
    expect(sse.status).toBe(413);
    const ingest = await send(events, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: `[${' '.repeat(12 * 1024 * 1024)}]`,
    });
    expect(ingest.status).toBe(413);
    await stillServes();
  });

  it('refuses a body over 25 MB with 413 on a subgraph reached directly, declared or chunked', async () => {
    const subgraph = platform.subgraphUrls.metrics;
    const post = (body: BodyInit) =>
      send(subgraph, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body,
        ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
      });
    const declared = await post(`{"query":"{ __typename }","padding":"${'x'.repeat(26_000_000)}"}`);
    expect(declared.status).toBe(413);
    expect(codeOf(declared)).toBe('PAYLOAD_TOO_LARGE');
    const streamed = await post(chunked(26_000_000));
    expect(streamed.status).toBe(413);
    expect(codeOf(streamed)).toBe('PAYLOAD_TOO_LARGE');
    const fine = await post(JSON.stringify({ query: `{ __typename } # ${'x'.repeat(2_000_000)}` }));
    expect(fine.body).toEqual({ data: { __typename: 'Query' } });
  });

  it('refuses a GET whose URL is longer than MAX_URL_BYTES with 414', async () => {
    const query = encodeURIComponent(`{ kpis { code } } # ${'x'.repeat(10_000)}`);
    const answer = await send(`${platform.gatewayUrl}?query=${query}`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(answer.status).toBe(414);
    expect(codeOf(answer)).toBe('URI_TOO_LONG');
    await stillServes();
  });

  it('refuses an ingest batch of 10,001 events over GraphQL and POST /events, and takes none of it', async () => {
    // Small events, so that the batch stays within the 1 MiB body limit and meets the batch limit.
    const batch = Array.from({ length: 10_001 }, () => ({
      type: 'BUSINESS_EVENT',
      name: 'order.placed',
      source: 's',
      timestamp: '2026-11-23T00:00:00Z',
    }));
    const viaGraphql = await postGraphql(
      JSON.stringify({
        query: 'mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted } }',
        variables: { events: batch },
      }),
    );
    expect(codeOf(viaGraphql)).toBe('BAD_USER_INPUT');
    expect(viaGraphql.body.errors?.[0]?.message).toMatch(/at most 10000 events in one batch, but got 10001/);
    const viaHttp = await send(events, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify(batch),
    });
    // POST /events counts the batch before any event is validated: 413, like any body too big to take.
    expect(viaHttp.status).toBe(413);
    expect(viaHttp.body).toMatchObject({
      error: { code: 'PAYLOAD_TOO_LARGE', message: 'expected at most 10000 events per batch, but got 10001' },
    });
    const { body } = await platform.graphql('{ kpi(code: "orders") { current { value } } }', {
      token: admin,
    });
    expect(JSON.stringify(body)).not.toMatch(/"value":[1-9]/);
    await stillServes();
  });
});

describe('malformed requests', () => {
  it('refuses malformed JSON with 400 on /graphql, SSE and /events', async () => {
    for (const body of ['{"query": "{ kpis { code } }"', '[', 'null', '"just a string"']) {
      const graphql = await postGraphql(body);
      expect(graphql.status, body).toBe(400);
      const ingest = await send(events, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body,
      });
      expect(ingest.status, body).toBe(400);
    }
    const sse = await postGraphql('{"query":', 'application/json', { accept: 'text/event-stream' });
    expect(sse.status).toBe(400);
    await stillServes();
  });

  it('refuses content types it does not speak with 415', async () => {
    for (const type of ['application/xml', 'text/plain', 'multipart/form-data; boundary=x']) {
      const graphql = await postGraphql('{"query":"{ kpis { code } }"}', type);
      expect(graphql.status, type).toBe(415);
      const ingest = await send(events, {
        method: 'POST',
        headers: { 'content-type': type, authorization: `Bearer ${admin}` },
        body: '[]',
      });
      expect(ingest.status, type).toBe(415);
    }
    await stillServes();
  });
});

describe('one socket, a thousand subscriptions', () => {
  it('runs the first 200 (MAX_SUBSCRIPTIONS_PER_CONNECTION), refuses the rest on the same socket, and delivers', async () => {
    const client = wsClient(platform.gatewayUrl, admin);
    const subscriptions = Array.from({ length: 1_000 }, () =>
      wsSubscribe<{ value: number }>(
        client,
        'subscription { kpiUpdated(codes: ["orders"]) { value } }',
        {},
        'kpiUpdated',
      ),
    );
    try {
      await expect
        .poll(() => subscriptions.filter((s) => s.errors.length).length, { timeout: 20_000 })
        .toBe(800);
      const refused = subscriptions.filter((s) => s.errors.length);
      expect(refused[0]!.errors[0]).toMatchObject({ extensions: { code: 'MAX_SUBSCRIPTIONS_EXCEEDED' } });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await publishKpiValues(platform.nats.url, 'acme', [{ code: 'orders', value: 5 }]);
      const running = subscriptions.filter((s) => !s.errors.length);
      expect(running).toHaveLength(200);
      await Promise.all(running.map((s) => s.until(1)));
      expect(running.every((s) => s.values.at(-1)?.value === 5)).toBe(true);
      // Completing one makes room for one more, on the same socket.
      running[0]!.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const another = wsSubscribe<{ value: number }>(
        client,
        'subscription { kpiUpdated(codes: ["orders"]) { value } }',
        {},
        'kpiUpdated',
      );
      await another.until(1);
      expect(another.errors).toEqual([]);
      another.close();
    } finally {
      for (const subscription of subscriptions) subscription.close();
      await client.dispose();
    }
    await stillServes();
  });
});

describe('browsers', () => {
  it('answers CORS preflights for the allow-listed origin only', async () => {
    const preflight = (origin: string) =>
      fetch(platform.gatewayUrl, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
    const allowed = await preflight(APP);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(APP);
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    expect(allowed.headers.get('vary')).toBe('Origin');
    const denied = await preflight('https://evil.example');
    expect(denied.status).toBe(403);
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();

    const simple = await fetch(platform.gatewayUrl, {
      method: 'POST',
      headers: {
        origin: 'https://evil.example',
        'content-type': 'application/json',
        authorization: `Bearer ${admin}`,
      },
      body: JSON.stringify({ query: '{ kpis { code } }' }),
    });
    expect(simple.headers.get('access-control-allow-origin')).toBeNull();
    const fromApp = await fetch(platform.gatewayUrl, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ query: '{ kpis { code } }' }),
    });
    expect(fromApp.headers.get('access-control-allow-origin')).toBe(APP);
    expect(fromApp.headers.get('access-control-expose-headers')).toMatch(/retry-after/);
  });

  it('refuses a WebSocket opened by a page of another origin, and accepts the allowed one', async () => {
    const open = (origin: string) =>
      new Promise<number | 'open'>((resolve) => {
        const socket = new WebSocket(platform.gatewayUrl.replace(/^http/, 'ws'), 'graphql-transport-ws', {
          origin,
        });
        socket.once('open', () => {
          socket.close();
          resolve('open');
        });
        socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
        socket.once('error', () => undefined);
      });
    expect(await open('https://evil.example')).toBe(403);
    expect(await open(APP)).toBe('open');
  });

  it('refuses a GET or form POST carrying no preflight-forcing header (CSRF), and serves it with one', async () => {
    const get = await send(`${platform.gatewayUrl}?query=${encodeURIComponent('{ __typename }')}`, {});
    expect(get.status).toBe(403);
    expect(codeOf(get)).toBe('CSRF_PREVENTED');
    const form = await send(platform.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'query=%7B__typename%7D',
    });
    expect(form.status).toBe(403);
    expect(codeOf(form)).toBe('CSRF_PREVENTED');
    const withHeader = await send(`${platform.gatewayUrl}?query=${encodeURIComponent('{ kpis { code } }')}`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(withHeader.body).toEqual({ data: { kpis: [{ code: 'orders' }] } });
  });

  it('sends security headers and a request id on every answer', async () => {
    const answers = [
      await fetch(new URL('/healthz', platform.gatewayUrl)),
      await fetch(platform.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }),
      await fetch(events, { method: 'GET' }),
      await fetch(platform.gatewayUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${admin}`,
          'x-request-id': 'req-7',
        },
        body: JSON.stringify({ query: '{ kpis { code } }' }),
      }),
    ];
    for (const answer of answers) {
      expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
      expect(answer.headers.get('x-frame-options')).toBe('DENY');
      expect(answer.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
      expect(answer.headers.get('referrer-policy')).toBe('no-referrer');
      expect(answer.headers.get('x-request-id')).toMatch(/\S/);
    }
    expect(answers[3]!.headers.get('x-request-id')).toBe('req-7');
  });
});
