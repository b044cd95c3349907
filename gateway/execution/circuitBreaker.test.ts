// Circuit breaking and retries towards subgraphs: the breaker's states over a fake clock, and the fetcher
// against a real HTTP server that counts what reaches it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffDelayMs, CircuitBreaker, isIdempotent } from './circuitBreaker.ts';
import { createSubgraphFetcher } from './subgraphFetcher.ts';

describe('the circuit breaker', () => {
  it('opens after N consecutive failures, fails fast for the cool-down, then lets one probe through', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 3, coolDownMs: 1_000 }, () => now);
    breaker.failed('a');
    breaker.failed('a');
    breaker.succeeded('a'); // not consecutive: the count starts again
    breaker.failed('a');
    breaker.failed('a');
    expect(breaker.state('a')).toBe('closed');
    breaker.failed('a');
    expect(breaker.state('a')).toBe('open');
    expect(breaker.allow('a')).toBe(false);
    expect(breaker.allow('b')).toBe(true);
    now = 999;
    expect(breaker.allow('a')).toBe(false);
    now = 1_000;
    expect(breaker.allow('a')).toBe(true);
    expect(breaker.state('a')).toBe('half-open');
    expect(breaker.allow('a')).toBe(false);
    breaker.failed('a'); // the probe failed: open again for a whole cool-down
    expect(breaker.state('a')).toBe('open');
    expect(breaker.retryAfterMs('a')).toBe(1_000);
    now = 2_000;
    expect(breaker.allow('a')).toBe(true);
    breaker.succeeded('a');
    expect(breaker.state('a')).toBe('closed');
    expect(breaker.allow('a')).toBe(true);
  });

  it('retries only what is not a mutation, with doubling delays', () => {
    expect(isIdempotent('{ kpis { code } }')).toBe(true);
    expect(isIdempotent('query Q__metrics__0 { kpis { code } }')).toBe(true);
    expect(isIdempotent('mutation($e:[EventInput!]!){ingestEvents(events:$e){accepted}}')).toBe(false);
    expect([1, 2, 3].map((attempt) => backoffDelayMs(attempt, 50, () => 0))).toEqual([50, 100, 200]);
    expect(backoffDelayMs(2, 50, () => 1)).toBe(150);
  });
});

describe('the subgraph fetcher towards a failing subgraph', () => {
  let server: Server;
  let url: string;
  let hits = 0;
  let healthy = false;

  beforeAll(async () => {
    server = createServer((request, response) => {
      hits += 1;
      request.resume();
      if (healthy) {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ data: { ok: true } }));
      } else {
        response.writeHead(502).end('bad gateway');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const fetcherOver = (coolDownMs: number) =>
    createSubgraphFetcher({
      urls: () => new Map([['flaky', url]]),
      timeoutMs: 2_000,
      resilience: { failureThreshold: 4, coolDownMs, retries: 2, retryBaseDelayMs: 10 },
    });

  it('retries a query with backoff but sends a mutation once', async () => {
    const fetcher = fetcherOver(60_000);
    hits = 0;
    const query = await fetcher.fetch('flaky', { query: '{ ok }' }, {});
    expect(query.errors?.[0]?.extensions?.['code']).toBe('SERVICE_UNAVAILABLE');
    expect(hits).toBe(3);
    hits = 0;
    const mutation = await fetcher.fetch('flaky', { query: 'mutation { ok }' }, {});
    expect(mutation.errors?.[0]?.extensions?.['code']).toBe('SERVICE_UNAVAILABLE');
    expect(hits).toBe(1);
    await fetcher.close();
  });

  it('stops calling a subgraph once its circuit opens, and closes it after a successful probe', async () => {
    const fetcher = fetcherOver(300);
    healthy = false;
    hits = 0;
    await fetcher.fetch('flaky', { query: '{ ok }' }, {}); // 3 attempts
    await fetcher.fetch('flaky', { query: '{ ok }' }, {}); // the 4th failure opens the circuit
    expect(hits).toBe(4);
    expect(fetcher.breaker.state('flaky')).toBe('open');
    const started = performance.now();
    const fast = await fetcher.fetch('flaky', { query: '{ ok }' }, {});
    expect(hits).toBe(4);
    expect(fast.errors?.[0]?.message).toMatch(/subgraph flaky is failing: circuit open/);
    expect(fast.errors?.[0]?.extensions?.['code']).toBe('SERVICE_UNAVAILABLE');
    console.log(`open circuit answered in ${(performance.now() - started).toFixed(2)} ms`);

    healthy = true;
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await fetcher.fetch('flaky', { query: '{ ok }' }, {})).toEqual({ data: { ok: true } });
    expect(hits).toBe(5);
    expect(fetcher.breaker.state('flaky')).toBe('closed');
    await fetcher.close();
  });
});
