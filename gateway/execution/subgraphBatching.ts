// When subgraph fetches go out together (SUBGRAPH_BATCHING): the fetches one caller queues for one
// subgraph within a turn of the event loop (a plan's wave: the fetches a Parallel node starts, or that
// answers arriving together release) form one batch, sent once the turn ends (`setImmediate`). How a batch
// is sent and its answer split is the fetcher's (subgraphFetcher.ts): one HTTP request whose body is the
// JSON array of the operations, as graphql-yoga's `batching` and Apollo Server's
// allowBatchedHttpRequests take them.

/** The most operations sent in one batch (graphql-yoga's default limit with `batching: true`). */
export const BATCH_LIMIT = 10;

/** Payloads waiting to go out together, and how to settle each one's fetch. */
interface Batch<Result> {
  payloads: string[];
  waiters: Array<{ resolve: (result: Result) => void; reject: (error: unknown) => void }>;
}

/**
 * A queue that groups payloads by caller (`key`, compared by identity) and subgraph, and hands each group
 * of at most BATCH_LIMIT to `send`, which answers one result per payload, in order; a rejection of `send`
 * rejects every fetch of its group.
 */
export function createBatchQueue<Key extends object, Result>(
  send: (subgraph: string, key: Key, payloads: string[]) => Promise<Result[]>,
): (subgraph: string, key: Key, payload: string) => Promise<Result> {
  const open = new WeakMap<Key, Map<string, Batch<Result>>>();
  return (subgraph, key, payload) =>
    new Promise<Result>((resolve, reject) => {
      let bySubgraph = open.get(key);
      if (!bySubgraph) open.set(key, (bySubgraph = new Map<string, Batch<Result>>()));
      let batch = bySubgraph.get(subgraph);
      if (!batch) {
        const opened: Batch<Result> = (batch = { payloads: [], waiters: [] });
        const waiting = bySubgraph;
        waiting.set(subgraph, opened);
        setImmediate(() => {
          if (waiting.get(subgraph) === opened) waiting.delete(subgraph);
          send(subgraph, key, opened.payloads).then(
            (results) => opened.waiters.forEach((waiter, i) => waiter.resolve(results[i]!)),
            (error: unknown) => opened.waiters.forEach((waiter) => waiter.reject(error)),
          );
        });
      }
      batch.payloads.push(payload);
      batch.waiters.push({ resolve, reject });
      // A full batch is closed (its send is still the one scheduled): the next payload opens another.
      if (batch.payloads.length === BATCH_LIMIT) bySubgraph.delete(subgraph);
    });
}
