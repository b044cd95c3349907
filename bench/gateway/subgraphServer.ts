// The benchmark's subgraphs in one process (on the load core): four bare node:http servers answering from
// a cache (the answer to a request body, executed once with graphql-js: the data never changes), so that
// the core they share with the load costs every peer little and alike, counting the operations they
// answer. Prints one JSON line { "<name>": "<url>", ... } once all listen. GET /fetches answers the
// operations counted so far, GET /exchanges the HTTP requests that carried them (fewer when batched);
// GET /record starts recording the operations received (URL and body), GET /recorded answers and ends it.
import { execute, parse, type DocumentNode } from 'graphql';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { benchSubgraphs, subgraphSchema } from './subgraphs.ts';
import { readBody } from './readBody.ts';

let fetches = 0;
let exchanges = 0;
let recorded: Array<{ url: string; body: string }> | undefined;

interface Operation {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

/** At most this many answers are kept per subgraph (the bench sends a few hundred distinct bodies). */
const CACHED_AT_MOST = 10_000;

const urls: Record<string, string> = {};
for (const subgraph of benchSubgraphs) {
  const schema = subgraphSchema(subgraph);
  const documents = new Map<string, DocumentNode>();
  const answer = async ({ query, variables, operationName }: Operation) => {
    let document = documents.get(query);
    if (!document) documents.set(query, (document = parse(query)));
    return execute({ schema, document, variableValues: variables, operationName });
  };
  /** Answers by request body: the answer's text and the operations the body held. */
  const answers = new Map<string, { text: string; operations: number }>();
  const answerBody = async (text: string) => {
    const body = JSON.parse(text) as Operation | Operation[];
    // A JSON array is a batch (our gateway's SUBGRAPH_BATCHING): answered by the array of its results.
    const results = await Promise.all((Array.isArray(body) ? body : [body]).map(answer));
    return { text: JSON.stringify(Array.isArray(body) ? results : results[0]), operations: results.length };
  };
  const server = createServer((req, res) => {
    if (req.method === 'GET') {
      // /healthz, /readyz (the gateway's readiness probe), /fetches, /exchanges, /record and /recorded.
      if (req.url === '/record') recorded = [];
      if (req.url === '/recorded') {
        res.end(JSON.stringify(recorded ?? []));
        recorded = undefined;
        return;
      }
      res.end(req.url === '/fetches' ? String(fetches) : req.url === '/exchanges' ? String(exchanges) : 'ok');
      return;
    }
    void readBody(req).then(async (text) => {
      exchanges++;
      recorded?.push({ url: urls[subgraph.name]!, body: text });
      let cached = answers.get(text);
      if (!cached) {
        cached = await answerBody(text);
        if (answers.size < CACHED_AT_MOST) answers.set(text, cached);
      }
      fetches += cached.operations;
      res.setHeader('content-type', 'application/json');
      res.end(cached.text);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  urls[subgraph.name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}
console.log(JSON.stringify(urls));
