// The benchmark's subgraphs in one process (on the load core): four bare node:http servers executing with
// graphql-js over a cache of parsed documents, counting the operations they answer. Prints one JSON line
// { "<name>": "<url>", ... } once all listen. GET /fetches answers the operations counted so far;
// GET /record starts recording the operations received (URL and body), GET /recorded answers and ends it.
import { execute, parse, type DocumentNode } from 'graphql';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { benchSubgraphs, subgraphSchema } from './subgraphs.ts';
import { readBody } from './readBody.ts';

let fetches = 0;
let recorded: Array<{ url: string; body: string }> | undefined;

const urls: Record<string, string> = {};
for (const subgraph of benchSubgraphs) {
  const schema = subgraphSchema(subgraph);
  const documents = new Map<string, DocumentNode>();
  const server = createServer((req, res) => {
    if (req.method === 'GET') {
      // /healthz, /readyz (the gateway's readiness probe), /fetches, /record and /recorded.
      if (req.url === '/record') recorded = [];
      if (req.url === '/recorded') {
        res.end(JSON.stringify(recorded ?? []));
        recorded = undefined;
        return;
      }
      res.end(req.url === '/fetches' ? String(fetches) : 'ok');
      return;
    }
    void readBody(req).then(async (text) => {
      fetches++;
      recorded?.push({ url: urls[subgraph.name]!, body: text });
      const { query, variables, operationName } = JSON.parse(text) as {
        query: string;
        variables?: Record<string, unknown>;
        operationName?: string;
      };
      let document = documents.get(query);
      if (!document) documents.set(query, (document = parse(query)));
      const result = await execute({ schema, document, variableValues: variables, operationName });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(result));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  urls[subgraph.name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}
console.log(JSON.stringify(urls));
