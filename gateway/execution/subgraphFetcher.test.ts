// Deduplication of identical query fetches in flight, against a real HTTP server that counts what
// reaches it and answers slowly enough for requests to meet.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSubgraphFetcher } from './subgraphFetcher.ts';

let server: Server;
let url: string;
const received: Array<{ body: string; authorization?: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ body, authorization: req.headers.authorization });
      const { variables } = JSON.parse(body) as { variables?: { n?: number } };
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: { item: { n: variables?.n ?? 0, tags: ['a'] } } }));
      }, 50);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => void received.splice(0));

const QUERY = 'query ($n: Int) { item(n: $n) { n tags } }';

describe('identical query fetches in flight', () => {
  it('share one subgraph request and its parsed answer (read-only: planExecutor.ts never writes into it)', async () => {
    const fetcher = createSubgraphFetcher({ urls: () => new Map([['a', url]]), timeoutMs: 5_000 });
    const caller = { authorization: 'Bearer one' };
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => fetcher.fetch('a', { query: QUERY, variables: { n: 1 } }, caller)),
    );
    expect(received).toHaveLength(1);
    for (const answer of answers) expect(answer).toEqual({ data: { item: { n: 1, tags: ['a'] } } });
    expect(answers.every((answer) => answer === answers[0])).toBe(true);
    await fetcher.close();
  });

  it('are not shared across other variables, other credentials, mutations, or with dedupe off', async () => {
    const fetcher = createSubgraphFetcher({ urls: () => new Map([['a', url]]), timeoutMs: 5_000 });
    await Promise.all([
      fetcher.fetch('a', { query: QUERY, variables: { n: 1 } }, { authorization: 'Bearer one' }),
      fetcher.fetch('a', { query: QUERY, variables: { n: 2 } }, { authorization: 'Bearer one' }),
      fetcher.fetch('a', { query: QUERY, variables: { n: 1 } }, { authorization: 'Bearer two' }),
      fetcher.fetch('a', { query: 'mutation { item { n } }' }, { authorization: 'Bearer one' }),
      fetcher.fetch('a', { query: 'mutation { item { n } }' }, { authorization: 'Bearer one' }),
    ]);
    expect(received).toHaveLength(5);
    expect(received.map((r) => r.authorization).sort()).toEqual([
      'Bearer one',
      'Bearer one',
      'Bearer one',
      'Bearer one',
      'Bearer two',
    ]);
    await fetcher.close();

    received.splice(0);
    const plain = createSubgraphFetcher({
      urls: () => new Map([['a', url]]),
      timeoutMs: 5_000,
      dedupe: false,
    });
    await Promise.all(
      [1, 2, 3].map(() =>
        plain.fetch('a', { query: QUERY, variables: { n: 1 } }, { authorization: 'Bearer one' }),
      ),
    );
    expect(received).toHaveLength(3);
    await plain.close();
  });

  it('send again once the shared request has been answered', async () => {
    const fetcher = createSubgraphFetcher({ urls: () => new Map([['a', url]]), timeoutMs: 5_000 });
    const caller = { authorization: 'Bearer one' };
    await fetcher.fetch('a', { query: QUERY, variables: { n: 1 } }, caller);
    await fetcher.fetch('a', { query: QUERY, variables: { n: 1 } }, caller);
    expect(received).toHaveLength(2);
    await fetcher.close();
  });
});
