import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
let eventsUrl: URL;
let ingest: string;

beforeAll(async () => {
  platform = await startTestPlatform();
  eventsUrl = new URL('/events', platform.gatewayUrl);
  ingest = await platform.token('acme', ['ingest']);
});
afterAll(() => platform?.stop());

// Fresh ids per run: the EVENTS stream's dedup window outlives one test database.
const run = randomUUID().slice(0, 8);
const event = (n: number, extra: Record<string, unknown> = {}) => ({
  id: `http-${run}-${n}`,
  type: 'BUSINESS_EVENT',
  name: 'checkout.completed',
  source: 'web',
  timestamp: new Date(Date.now() - 60_000).toISOString(),
  attributes: { amount: 10 + n, country: 'DE' },
  ...extra,
});

async function post(
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(eventsUrl, { method: 'POST', headers, body });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const codeOf = (body: Record<string, unknown>) => (body['error'] as { code?: string } | undefined)?.code;

describe('POST /events on the gateway', () => {
  it('answers 401 without a token, and for a token the platform does not accept', async () => {
    const batch = JSON.stringify([event(0)]);
    const missing = await post(batch, { 'content-type': 'application/json' });
    expect(missing.status).toBe(401);
    expect(codeOf(missing.body)).toBe('UNAUTHENTICATED');
    const forged = await post(batch, {
      'content-type': 'application/json',
      authorization: 'Bearer not.a.jwt',
    });
    expect(forged.status).toBe(401);
    expect(codeOf(forged.body)).toBe('UNAUTHENTICATED');
  });

  it('answers 403 to a viewer token: the same role check as the ingestEvents mutation', async () => {
    const viewer = await platform.token('acme', ['viewer']);
    const { status, body } = await post(JSON.stringify([event(0)]), {
      'content-type': 'application/json',
      authorization: `Bearer ${viewer}`,
    });
    expect(status).toBe(403);
    expect(codeOf(body)).toBe('FORBIDDEN');
  });

  it('answers 415 to a body that is neither JSON nor NDJSON', async () => {
    const { status, body } = await post('type=USER_ACTION', {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Bearer ${ingest}`,
    });
    expect(status).toBe(415);
    expect(codeOf(body)).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 413 to a body declared larger than INGEST_MAX_BODY_BYTES, without reading it', async () => {
    const limit = platform.config.INGEST_MAX_BODY_BYTES;
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        eventsUrl,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${ingest}`,
            'content-type': 'application/json',
            'content-length': String(limit + 1),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        },
      );
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(status).toBe(413);
    expect(codeOf(JSON.parse(body) as Record<string, unknown>)).toBe('PAYLOAD_TOO_LARGE');
  });

  it('ingests a batch with the ingest role, counts a re-send as duplicates, reports rejections by index', async () => {
    const batch = [event(1), event(2, { type: 'NOPE' }), event(3), event(4)];
    const ndjson = batch.map((e) => JSON.stringify(e)).join('\n');
    const headers = { 'content-type': 'application/x-ndjson', authorization: `Bearer ${ingest}` };
    const rejected = [{ index: 1, message: expect.stringMatching(/^type: expected one of/) as string }];

    const first = await post(ndjson, headers);
    expect(first).toEqual({ status: 200, body: { accepted: 3, duplicates: 0, rejected } });
    const again = await post(ndjson, headers);
    expect(again).toEqual({ status: 200, body: { accepted: 0, duplicates: 3, rejected } });
  });
});
