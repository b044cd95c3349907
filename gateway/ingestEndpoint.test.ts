import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_BATCH_EVENTS } from '../lib/events.ts';
import { createLogger } from '../lib/logger.ts';
import { createIngestEndpoint, INGEST_MUTATION } from './ingestEndpoint.ts';

const MAX_BODY_BYTES = 64 * 1024;

interface Forwarded {
  url: string;
  headers: Headers;
  body: { query: string; variables: { events: Array<Record<string, unknown>> } };
}

/** A stand-in for the gateway's yoga: records what is forwarded, answers what the test chose. */
const yoga = {
  calls: [] as Forwarded[],
  answer: (events: unknown[]): Response | Promise<Response> =>
    Response.json({ data: { ingestEvents: { accepted: events.length, duplicates: 0, rejected: [] } } }),
  async fetch(url: string, init: RequestInit): Promise<Response> {
    const call = {
      url,
      headers: new Headers(init.headers),
      body: JSON.parse(init.body as string) as Forwarded['body'],
    };
    this.calls.push(call);
    return this.answer(call.body.variables.events);
  },
};
const answerWith = (answer: typeof yoga.answer) => {
  yoga.answer = answer;
};
const graphqlError =
  (code: string | undefined, status = 200, headers: Record<string, string> = {}) =>
  () =>
    Response.json(
      { data: null, errors: [{ message: `refused: ${code}`, extensions: code ? { code } : {} }] },
      { status, headers },
    );

const event = (n: number, extra: Record<string, unknown> = {}) => ({
  id: `evt-${n}`,
  type: 'USER_ACTION',
  name: 'checkout.completed',
  source: 'web',
  timestamp: '2025-03-01T12:00:00.000Z',
  attributes: { amount: n },
  ...extra,
});

let server: Server;
let url: URL;

beforeAll(async () => {
  const endpoint = createIngestEndpoint({
    yoga,
    logger: createLogger('test', 'silent'),
    maxBodyBytes: MAX_BODY_BYTES,
  });
  server = createServer(endpoint);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/events`);
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  yoga.calls = [];
  answerWith((events) =>
    Response.json({ data: { ingestEvents: { accepted: events.length, duplicates: 0, rejected: [] } } }),
  );
});

async function post(
  body: BodyInit | undefined,
  headers: Record<string, string> = {},
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: 'Bearer token-1', 'content-type': 'application/json', ...headers },
    body,
    ...init,
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** Sends only the request head (no body byte), to show a refusal that does not wait for the body. */
function headOnly(
  headers: Record<string, string>,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

describe('POST /events', () => {
  it('forwards a JSON array as the ingestEvents mutation with the caller token and answers its outcome', async () => {
    const { status, headers, body } = await post(JSON.stringify([event(0), event(1)]), {
      'x-request-id': 'req-42',
    });
    expect(status).toBe(200);
    expect(headers.get('x-request-id')).toBe('req-42');
    expect(body).toEqual({ accepted: 2, duplicates: 0, rejected: [] });
    expect(yoga.calls).toHaveLength(1);
    const [call] = yoga.calls;
    expect(call!.url).toBe('http://gateway.internal/graphql');
    expect(call!.headers.get('authorization')).toBe('Bearer token-1');
    expect(call!.headers.get('content-type')).toBe('application/json');
    expect(call!.headers.get('x-request-id')).toBe('req-42');
    expect(call!.body.query).toBe(INGEST_MUTATION);
    expect(call!.body.variables.events).toEqual([
      { ...event(0), metadata: null, version: null },
      { ...event(1), metadata: null, version: null },
    ]);
  });

  it('takes { "events": [...] } and forwards the EventInput shape with timestamps as ISO strings', async () => {
    const full = event(7, {
      timestamp: '2025-03-01T14:00:00+02:00',
      metadata: { sessionId: 's-1', batchId: null },
      version: '2',
    });
    const { status, body } = await post(JSON.stringify({ events: [full] }));
    expect(status).toBe(200);
    expect(body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    expect(yoga.calls[0]!.body.variables.events).toEqual([
      { ...full, timestamp: '2025-03-01T12:00:00.000Z', metadata: { sessionId: 's-1' } },
    ]);
  });

  it('reads NDJSON one event per line: blank lines skipped, a malformed line rejects only that event', async () => {
    const lines = [
      JSON.stringify(event(0)),
      '',
      '{"id": "evt-1", oops}',
      '   ',
      JSON.stringify(event(2)),
      '',
    ];
    const { status, body } = await post(lines.join('\r\n'), { 'content-type': 'application/x-ndjson' });
    expect(status).toBe(200);
    expect(body).toEqual({
      accepted: 2,
      duplicates: 0,
      rejected: [
        { index: 1, message: expect.stringMatching(/^line 3: invalid JSON: .*position 16\b/) as string },
      ],
    });
    expect(yoga.calls[0]!.body.variables.events.map((e) => e['id'])).toEqual(['evt-0', 'evt-2']);
  });

  it('takes application/jsonl as NDJSON', async () => {
    const { status, body } = await post(`${JSON.stringify(event(0))}\n`, {
      'content-type': 'application/jsonl; charset=utf-8',
    });
    expect(status).toBe(200);
    expect(body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
  });

  it('forwards only valid events and maps the rejections of the subgraph back to the indices sent', async () => {
    answerWith(() =>
      Response.json({
        data: {
          ingestEvents: { accepted: 1, duplicates: 1, rejected: [{ index: 1, message: 'store refused it' }] },
        },
      }),
    );
    const batch = [event(0), event(1, { type: 'NOPE' }), event(2), event(3, { name: 'bad name!' }), event(4)];
    const { status, body } = await post(JSON.stringify(batch));
    expect(status).toBe(200);
    expect(yoga.calls[0]!.body.variables.events.map((e) => e['id'])).toEqual(['evt-0', 'evt-2', 'evt-4']);
    expect(body).toEqual({
      accepted: 1,
      duplicates: 1,
      rejected: [
        { index: 1, message: expect.stringMatching(/^type: expected one of USER_ACTION/) as string },
        { index: 2, message: 'store refused it' },
        { index: 3, message: expect.stringMatching(/^name: /) as string },
      ],
    });
  });

  it('still forwards an all-invalid batch, empty, so that the caller is authenticated', async () => {
    const { status, body } = await post(JSON.stringify([{ id: 'x' }, event(1, { timestamp: 'yesterday' })]));
    expect(status).toBe(200);
    expect(body).toEqual({
      accepted: 0,
      duplicates: 0,
      rejected: [
        { index: 0, message: expect.stringMatching(/^type: /) as string },
        { index: 1, message: 'timestamp: expected an ISO-8601 date-time with zone, but got "yesterday"' },
      ],
    });
    expect(yoga.calls).toHaveLength(1);
    expect(yoga.calls[0]!.body.variables.events).toEqual([]);
  });

  it('refuses a body that is not JSON with 400 naming the position', async () => {
    for (const [text, position] of [
      ['[{"id": "a"},]', 13],
      ['[1, 2', 5],
      ['nope', 1],
    ] as const) {
      const { status, body } = await post(text);
      expect(status).toBe(400);
      expect(body['error']).toEqual({
        code: 'BAD_REQUEST',
        message: expect.stringMatching(new RegExp(`^invalid JSON body: .*position ${position}\\b`)) as string,
      });
    }
    const { status, body } = await post('{"items": []}');
    expect(status).toBe(400);
    expect(body['error']).toEqual({
      code: 'BAD_REQUEST',
      message:
        'expected a JSON array of events or { "events": [...] }, but got an object without an "events" array',
    });
    expect(yoga.calls).toHaveLength(0);
  });

  it('refuses other media types and compressed bodies with 415', async () => {
    for (const headers of [
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    ] as Array<Record<string, string>>) {
      const { status, body } = await post('[]', headers);
      expect(status).toBe(415);
      expect((body['error'] as { code: string }).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('allows only POST: 405 with Allow', async () => {
    const { status, headers, body } = await post(undefined, {}, { method: 'GET' });
    expect(status).toBe(405);
    expect(headers.get('allow')).toBe('POST');
    expect(body['error']).toEqual({ code: 'METHOD_NOT_ALLOWED', message: 'expected POST, but got GET' });
  });

  it('refuses a request without a bearer token with 401 before reading the body', async () => {
    for (const headers of [{ authorization: '' }, { authorization: 'Basic dXNlcjpwYXNz' }]) {
      const { status, body } = await post(JSON.stringify([event(0)]), headers);
      expect(status).toBe(401);
      expect((body['error'] as { code: string }).code).toBe('UNAUTHENTICATED');
    }
    expect(yoga.calls).toHaveLength(0);
  });

  it('refuses a declared Content-Length over the limit with 413 without waiting for the body', async () => {
    const { status, headers, body } = await headOnly({
      authorization: 'Bearer token-1',
      'content-type': 'application/json',
      'content-length': String(MAX_BODY_BYTES + 1),
    });
    expect(status).toBe(413);
    expect(headers.connection).toBe('close');
    expect(JSON.parse(body)).toEqual({
      error: {
        code: 'PAYLOAD_TOO_LARGE',
        message: `expected a body of at most ${MAX_BODY_BYTES} bytes, but Content-Length is ${MAX_BODY_BYTES + 1}`,
      },
    });
  });

  it('stops reading a chunked body once it passes the limit and answers 413', async () => {
    const chunk = new TextEncoder().encode(`${JSON.stringify(event(0))}\n`.padEnd(1024, ' '));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Endless: only the server's refusal ends this request.
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const { status, body } = await post(stream, { 'content-type': 'application/x-ndjson' }, {
      duplex: 'half',
    } as RequestInit);
    expect(status).toBe(413);
    expect(body['error']).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      message: `expected a body of at most ${MAX_BODY_BYTES} bytes, but got more`,
    });
    expect(sent).toBeGreaterThan(MAX_BODY_BYTES);
    expect(yoga.calls).toHaveLength(0);
  });

  it(`refuses more than ${MAX_BATCH_EVENTS} events with 413 saying the limit`, async () => {
    const { status, body } = await post(
      `[${Array(MAX_BATCH_EVENTS + 1)
        .fill('{}')
        .join(',')}]`,
    );
    expect(status).toBe(413);
    expect(body['error']).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      message: `expected at most ${MAX_BATCH_EVENTS} events per batch, but got ${MAX_BATCH_EVENTS + 1}`,
    });
    expect(yoga.calls).toHaveLength(0);
  });

  describe('maps the GraphQL outcome to an HTTP status', () => {
    it.each([
      ['UNAUTHENTICATED', 401, 401],
      ['FORBIDDEN', 200, 403],
      ['BAD_USER_INPUT', 200, 400],
      ['RATE_LIMITED', 429, 429],
      ['SERVICE_UNAVAILABLE', 200, 503],
      ['NOT_IMPLEMENTED', 200, 502],
      ['INTERNAL_SERVER_ERROR', 500, 502],
    ])('%s (GraphQL HTTP %i) -> %i', async (code, graphqlStatus, expected) => {
      answerWith(graphqlError(code, graphqlStatus));
      const { status, body } = await post(JSON.stringify([event(0)]));
      expect(status).toBe(expected);
      expect(body).toEqual({ error: { code, message: `refused: ${code}` } });
    });

    it('keeps Retry-After of a rate-limited call', async () => {
      answerWith(graphqlError('RATE_LIMITED', 429, { 'retry-after': '7' }));
      const { status, headers } = await post(JSON.stringify([event(0)]));
      expect(status).toBe(429);
      expect(headers.get('retry-after')).toBe('7');
    });

    it('answers 503 when the gateway call fails or a subgraph fetch failed without a code', async () => {
      answerWith(() => Promise.reject(new Error('socket hang up')));
      let reply = await post(JSON.stringify([event(0)]));
      expect(reply.status).toBe(503);
      expect(reply.body['error']).toEqual({
        code: 'SERVICE_UNAVAILABLE',
        message: 'the gateway did not answer: socket hang up',
      });
      answerWith(graphqlError(undefined));
      reply = await post(JSON.stringify([event(0)]));
      expect(reply.status).toBe(503);
      expect((reply.body['error'] as { code: string }).code).toBe('SERVICE_UNAVAILABLE');
    });

    it("reads the code of a subgraph's non-2xx answer that @apollo/gateway passes on without one", async () => {
      answerWith(() =>
        Response.json({
          data: null,
          errors: [
            {
              message: '429: Too Many Requests',
              extensions: {
                response: { status: 429, body: { errors: [{ extensions: { code: 'RATE_LIMITED' } }] } },
              },
            },
          ],
        }),
      );
      const { status, body } = await post(JSON.stringify([event(0)]));
      expect(status).toBe(429);
      expect(body).toEqual({ error: { code: 'RATE_LIMITED', message: '429: Too Many Requests' } });
    });

    it('answers 503 for an HTTP 5xx without a GraphQL body, and 502 for any other unreadable answer', async () => {
      answerWith(() => new Response('upstream down', { status: 500 }));
      expect((await post(JSON.stringify([event(0)]))).status).toBe(503);
      answerWith(() => new Response('<html>', { status: 200 }));
      expect((await post(JSON.stringify([event(0)]))).status).toBe(502);
    });
  });
});
