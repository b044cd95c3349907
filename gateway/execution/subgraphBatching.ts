// When subgraph fetches go out together (SUBGRAPH_BATCHING): the fetches one caller queues for one
// subgraph within a turn of the event loop (a plan's wave: the fetches a Parallel node starts, or that
// answers arriving together release) form one batch, sent once the turn ends (`setImmediate`). How a batch
// is sent and its answer split is the fetcher's (subgraphFetcher.ts): one HTTP request whose body is the
// JSON array of the operations, as graphql-yoga's `batching` and Apollo Server's
// allowBatchedHttpRequests take them.

/** The most operations sent in one batch (graphql-yoga's default limit with `batching: true`). */
export const BATCH_LIMIT = 10;

/** Fetches waiting to go out together, and how to settle each one. */
interface Batch<Item, Result> {
  items: Item[];
  waiters: Array<{ resolve: (result: Result) => void; reject: (error: unknown) => void }>;
}

/**
 * A queue that groups fetches (`item`: a payload and whatever its sending needs) by caller (`key`,
 * compared by identity) and subgraph, and hands each group of at most BATCH_LIMIT to `send`, which
 * answers one result per item, in order; a rejection of `send` rejects every fetch of its group.
 */
export function createBatchQueue<Key extends object, Item, Result>(
  send: (subgraph: string, key: Key, items: Item[]) => Promise<Result[]>,
): (subgraph: string, key: Key, item: Item) => Promise<Result> {
  const open = new WeakMap<Key, Map<string, Batch<Item, Result>>>();
  return (subgraph, key, item) =>
    new Promise<Result>((resolve, reject) => {
      let bySubgraph = open.get(key);
      if (!bySubgraph) open.set(key, (bySubgraph = new Map<string, Batch<Item, Result>>()));
      let batch = bySubgraph.get(subgraph);
      if (!batch) {
        const opened: Batch<Item, Result> = (batch = { items: [], waiters: [] });
        const waiting = bySubgraph;
        waiting.set(subgraph, opened);
        setImmediate(() => {
          if (waiting.get(subgraph) === opened) waiting.delete(subgraph);
          send(subgraph, key, opened.items).then(
            (results) => opened.waiters.forEach((waiter, i) => waiter.resolve(results[i]!)),
            (error: unknown) => opened.waiters.forEach((waiter) => waiter.reject(error)),
          );
        });
      }
      batch.items.push(item);
      batch.waiters.push({ resolve, reject });
      // A full batch is closed (its send is still the one scheduled): the next fetch opens another.
      if (batch.items.length === BATCH_LIMIT) bySubgraph.delete(subgraph);
    });
}
