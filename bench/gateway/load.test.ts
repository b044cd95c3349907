import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { percentile, runLoad } from './load.ts';

// A server that answers every request after `delayMs` with its body, and notes when each one arrived.
let server: Server;
let url: string;
let delayMs = 0;
const arrivals: number[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    arrivals.push(performance.now());
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => setTimeout(() => res.end(Buffer.concat(chunks)), delayMs));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** An open loop against the echoing server: request n's body is `{"n":n}`, expected back unless told otherwise. */
const echoLoad = (
  options: { connections: number; seconds: number; rate: number; sameJson?: boolean },
  expected = (n: number) => `{"n":${n}}`,
) =>
  runLoad({
    url,
    headers: {},
    ...options,
    exchange: (n) => ({ body: `{"n":${n}}`, expected: expected(n) }),
  });

describe('the fixed-rate open loop', () => {
  it('sends at even intervals, not a burst per second, and checks every body', async () => {
    arrivals.length = 0;
    delayMs = 5;
    const load = await echoLoad({ connections: 20, seconds: 1, rate: 50 }, (n) =>
      n === 7 ? 'other' : `{"n":${n}}`,
    );
    expect(load.sent).toBe(50);
    expect(load.requests).toBe(50);
    expect(load.mismatches).toBe(1);
    expect(load.failures).toBe(0);
    const gaps = arrivals.slice(1).map((at, i) => at - arrivals[i]!);
    // 20 ms apart; autocannon's overallRate sent all 50 within a few ms of the second's start.
    expect(percentile(gaps, 0.5)).toBeGreaterThan(12);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThan(800);
  });

  it('counts time from when a request was due, so a server falling behind shows in the latencies', async () => {
    delayMs = 200;
    const load = await echoLoad({ connections: 1, seconds: 0.5, rate: 20 });
    expect(load.requests).toBe(10);
    // One connection answers every 200 ms while requests fall due every 50 ms: the last waits about
    // nine answers' time, not just its own 200 ms.
    expect(Math.max(...load.latencies)).toBeGreaterThan(1_200);
  });

  it('accepts the same JSON in another key order only when told, and counts it', async () => {
    delayMs = 0;
    // The server echoes {"n":n}; expected here is the same object with a key before n, or another n.
    const expected = (n: number) => (n % 2 ? `{"n":${n + 1}}` : `{ "n": ${n} }`);
    const strict = await echoLoad({ connections: 2, seconds: 0.2, rate: 50 }, expected);
    expect(strict).toMatchObject({ sent: 10, mismatches: 10, reordered: 0 });
    const lenient = await echoLoad({ connections: 2, seconds: 0.2, rate: 50, sameJson: true }, expected);
    expect(lenient).toMatchObject({ sent: 10, mismatches: 5, reordered: 5 });
  });
});
