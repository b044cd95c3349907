// Peer: @apollo/gateway's executor inside graphql-yoga on node:http (what @envelop/apollo-federation did).
// Env: BENCH_SUPERGRAPH (file), BENCH_PORT, BENCH_FORWARD_HEADERS (optional). Prints "listening <port>".
import { ApolloGateway } from '@apollo/gateway';
import { getOperationAST, print, type ExecutionArgs } from 'graphql';
import { createYoga, type Plugin } from 'graphql-yoga';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { forwardingDataSources } from './apolloForwarding.ts';
import { FORWARDED_HEADERS, forwardedHeaders } from './forwardHeaders.ts';

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(process.env['BENCH_SUPERGRAPH']!, 'utf8'),
  buildService: forwardingDataSources(),
});
const { schema, executor } = await gateway.load();
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const hashes = new WeakMap<object, { query: string; hash: string }>();

const apolloExecution: Plugin = {
  onExecute({ setExecuteFn }) {
    setExecuteFn(async (args: ExecutionArgs) => {
      const { document, operationName, variableValues, contextValue } = args;
      let printed = hashes.get(document);
      if (!printed) {
        const query = print(document);
        hashes.set(document, (printed = { query, hash: createHash('sha256').update(query).digest('hex') }));
      }
      // The fields of Apollo Server's request context that the gateway's executor reads.
      const requestContext = {
        request: {
          query: printed.query,
          operationName: operationName ?? undefined,
          variables: variableValues ?? {},
        },
        document,
        source: printed.query,
        queryHash: printed.hash,
        operationName: operationName ?? null,
        operation: getOperationAST(document, operationName),
        schema,
        context: contextValue,
        logger: silent,
        metrics: {},
        overallCachePolicy: {},
        cache: undefined,
      };
      return executor(requestContext as unknown as Parameters<typeof executor>[0]);
    });
  },
};

const yoga = createYoga({
  schema,
  plugins: [apolloExecution],
  // The executor hands this context to the data sources (forwardHeaders.ts); yoga's own otherwise.
  ...(FORWARDED_HEADERS.length > 0 && {
    context: ({ request }: { request: Request }) => ({
      forwarded: forwardedHeaders((name) => request.headers.get(name)),
    }),
  }),
  logging: false,
  graphiql: false,
  landingPage: false,
});
// yoga's node handler returns a promise that node:http ignores; it settles the response itself.
const server = createServer((req, res) => void yoga(req, res));
server.listen(Number(process.env['BENCH_PORT']), '127.0.0.1', () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});
