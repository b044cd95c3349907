// Batching (SUBGRAPH_BATCHING): a caller's fetches to one subgraph in one turn of the event loop go out as
// one HTTP request, against a real HTTP server that answers arrays as graphql-yoga's `batching` does, or
// misbehaves as told by the path.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BATCH_LIMIT } from './subgraphBatching.ts';
import { createSubgraphFetcher } from './subgraphFetcher.ts';

let server: Server;
let base: string;
const received: Array<{ path: string; body: unknown; authorization?: string }> = [];

interface Operation {
  query: string;
  variables?: { n?: number };
}

const answer = (operation: Operation) =>
  operation.query.includes('fail')
    ? { data: null, errors: [{ message: 'no such item', path: ['item'] }] }
    : { data: { item: { n: operation.variables?.n ?? 0 } } };

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      const body = JSON.parse(text) as Operation | Operation[];
      received.push({ path: req.url!, body, authorization: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      if (req.url === '/refuses' && Array.isArray(body)) {
        res.statusCode = 400;
        res.end(JSON.stringify({ errors: [{ message: 'batching is not enabled' }] }));
      } else if (req.url === '/short' && Array.isArray(body)) {
        res.end(JSON.stringify(body.slice(1).map(answer)));
      } else res.end(JSON.stringify(Array.isArray(body) ? body.map(answer) : answer(body)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => void received.splice(0));

const QUERY = 'query ($n: Int) { item(n: $n) { n } }';
const fetcherFor = (path: string, batched = ['a']) =>
  createSubgraphFetcher({
    urls: () => new Map([['a', `${base}${path}`]]),
    timeoutMs: 5_000,
    resilience: { retries: 0 },
    batching: (subgraph) => batched.includes(subgraph),
  });

describe('batched subgraph fetches', () => {
  it("send one caller's fetches of one turn as one request, each answered with its own result", async () => {
    const fetcher = fetcherFor('/graphql');
    const caller = { authorization: 'Bearer one' };
    const answers = await Promise.all([
      fetcher.fetch('a', { query: QUERY, variables: { n: 1 } }, caller),
      fetcher.fetch('a', { query: QUERY, variables: { n: 2 } }, caller),
      fetcher.fetch('a', { query: 'query fail { item { n } }' }, caller),
    ]);
    expect(received).toHaveLength(1);
    expect(received[0]!.authorization).toBe('Bearer one');
    expect((received[0]!.body as Operation[]).map((operation) => operation.variables?.n)).toEqual([
      1,
      2,
      undefined,
    ]);
    expect(answers[0]).toEqual({ data: { item: { n: 1 } } });
    expect(answers[1]).toEqual({ data: { item: { n: 2 } } });
    expect(answers[2]).toEqual({ data: null, errors: [{ message: 'no such item', path: ['item'] }] });
    await fetcher.close();
  });

  it('keep callers, subgraphs without batching, later turns and lone fetches apart', async () => {
    const fetcher = fetcherFor('/graphql');
    await Promise.all([
      fetcher.fetch('a', { query: QUERY, variables: { n: 1 } }, { authorization: 'Bearer one' }),
      fetcher.fetch('a', { query: QUERY, variables: { n: 2 } }, { authorization: 'Bearer two' }),
    ]);
    const caller = { authorization: 'Bearer one' };
    await fetcher.fetch('a', { query: QUERY, variables: { n: 3 } }, caller);
    await fetcher.fetch('a', { query: QUERY, variables: { n: 4 } }, caller);
    // Every request above carried one operation, as a plain object: no array for a batch of one.
    expect(received.map((r) => Array.isArray(r.body))).toEqual([false, false, false, false]);
    await fetcher.close();

    received.splice(0);
    const unbatched = fetcherFor('/graphql', []);
    await Promise.all([1, 2].map((n) => unbatched.fetch('a', { query: QUERY, variables: { n } }, caller)));
    expect(received).toHaveLength(2);
    await unbatched.close();
  });

  it('never batch mutations', async () => {
    const fetcher = fetcherFor('/graphql');
    const caller = { authorization: 'Bearer one' };
    await Promise.all([
      fetcher.fetch('a', { query: 'mutation { item { n } }' }, caller),
      fetcher.fetch('a', { query: 'mutation { item { n } }' }, caller),
    ]);
    expect(received.map((r) => Array.isArray(r.body))).toEqual([false, false]);
    await fetcher.close();
  });

  it(`split more than ${BATCH_LIMIT} fetches into batches of at most ${BATCH_LIMIT}`, async () => {
    const fetcher = fetcherFor('/graphql');
    const caller = { authorization: 'Bearer one' };
    const count = BATCH_LIMIT * 2 + 3;
    const answers = await Promise.all(
      Array.from({ length: count }, (_, n) => fetcher.fetch('a', { query: QUERY, variables: { n } }, caller)),
    );
    expect(received.map((r) => (r.body as Operation[]).length)).toEqual([BATCH_LIMIT, BATCH_LIMIT, 3]);
    expect(answers.map((a) => (a.data?.['item'] as { n: number }).n)).toEqual(
      Array.from({ length: count }, (_, n) => n),
    );
    await fetcher.close();
  });

  it("give every fetch of a refused batch the subgraph's errors", async () => {
    const fetcher = fetcherFor('/refuses');
    const caller = { authorization: 'Bearer one' };
    const answers = await Promise.all(
      [1, 2].map((n) => fetcher.fetch('a', { query: QUERY, variables: { n } }, caller)),
    );
    for (const answer of answers) expect(answer.errors).toEqual([{ message: 'batching is not enabled' }]);
    await fetcher.close();
  });

  it('fail every fetch of a batch answered with the wrong number of results, as SERVICE_UNAVAILABLE', async () => {
    const fetcher = fetcherFor('/short');
    const caller = { authorization: 'Bearer one' };
    const answers = await Promise.all(
      [1, 2, 3].map((n) => fetcher.fetch('a', { query: QUERY, variables: { n } }, caller)),
    );
    for (const answer of answers) {
      expect(answer.data).toBeNull();
      expect(answer.errors?.[0]?.extensions?.['code']).toBe('SERVICE_UNAVAILABLE');
      expect(answer.errors?.[0]?.message).toContain('a batch of 3 operations with HTTP 200 and 2 results');
    }
    await fetcher.close();
  });

  it('fail every fetch of a batch whose subgraph cannot be reached', async () => {
    const fetcher = createSubgraphFetcher({
      urls: () => new Map([['a', 'http://127.0.0.1:1/graphql']]),
      timeoutMs: 5_000,
      resilience: { retries: 0 },
      batching: () => true,
    });
    const answers = await Promise.all(
      [1, 2].map((n) => fetcher.fetch('a', { query: QUERY, variables: { n } }, {})),
    );
    for (const answer of answers) {
      expect(answer.errors?.[0]?.extensions?.['code']).toBe('SERVICE_UNAVAILABLE');
      expect(answer.errors?.[0]?.message).toContain('is unreachable');
    }
    await fetcher.close();
  });
});
