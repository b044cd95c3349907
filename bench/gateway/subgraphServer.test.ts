import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSubgraphs, subgraphExchanges, subgraphFetches } from './servers.ts';

// The bench's subgraph process answers a body it has seen from its cache: the same bytes graphql-js
// wrote the first time, each operation counted, batches included.
let subgraphs: Awaited<ReturnType<typeof startSubgraphs>>;

beforeAll(async () => {
  subgraphs = await startSubgraphs();
});

afterAll(async () => {
  await subgraphs?.stop();
});

const post = async (url: string, body: unknown) => {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return response.text();
};

const topProducts = (first: number) => ({
  query: 'query Top($first: Int) { topProducts(first: $first) { upc name } }',
  variables: { first },
});

describe('the bench subgraphs', () => {
  it('answer a body seen before with the same bytes, and count every operation and request', async () => {
    const url = subgraphs.urls['products']!;
    const fetchesBefore = await subgraphFetches(subgraphs.urls);
    const exchangesBefore = await subgraphExchanges(subgraphs.urls);

    const first = await post(url, topProducts(2));
    const again = await post(url, topProducts(2));
    expect(again).toBe(first);
    expect(JSON.parse(first)).toEqual({
      data: { topProducts: [expect.objectContaining({ upc: '1' }), expect.objectContaining({ upc: '2' })] },
    });
    // Another body (another variable) is executed, not served from the first one's answer.
    expect(
      (JSON.parse(await post(url, topProducts(3))) as { data: { topProducts: unknown[] } }).data.topProducts,
    ).toHaveLength(3);

    // A batch (SUBGRAPH_BATCHING), twice: an array of answers, each operation counted both times.
    const batch = [topProducts(1), topProducts(2)];
    const batched = await post(url, batch);
    expect(await post(url, batch)).toBe(batched);
    expect(JSON.parse(batched)).toEqual([JSON.parse(await post(url, topProducts(1))), JSON.parse(first)]);

    expect((await subgraphFetches(subgraphs.urls)) - fetchesBefore).toBe(2 + 1 + 2 * 2 + 1);
    expect((await subgraphExchanges(subgraphs.urls)) - exchangesBefore).toBe(2 + 1 + 2 + 1);
  });
});
