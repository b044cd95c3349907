// Peer: @apollo/gateway served by @apollo/server's standalone HTTP server.
// Env: BENCH_SUPERGRAPH (file), BENCH_PORT, BENCH_FORWARD_HEADERS (optional). Prints "listening <port>".
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { readFileSync } from 'node:fs';
import { forwardingDataSources } from './apolloForwarding.ts';
import { FORWARDED_HEADERS, forwardedHeaders } from './forwardHeaders.ts';

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(process.env['BENCH_SUPERGRAPH']!, 'utf8'),
  buildService: forwardingDataSources(),
});
const server = new ApolloServer({ gateway, introspection: false });
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(process.env['BENCH_PORT']), host: '127.0.0.1' },
  // Without forwarded headers, the default context ({}), as before.
  ...(FORWARDED_HEADERS.length > 0 && {
    context: ({ req }) =>
      Promise.resolve({ forwarded: forwardedHeaders((name) => req.headers[name]?.toString()) }),
  }),
});
console.log(`listening ${new URL(url).port}`);
