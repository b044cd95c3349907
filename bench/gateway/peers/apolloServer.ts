// Peer: @apollo/gateway served by @apollo/server's standalone HTTP server.
// Env: BENCH_SUPERGRAPH (file), BENCH_PORT. Prints "listening <port>".
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { readFileSync } from 'node:fs';

const gateway = new ApolloGateway({ supergraphSdl: readFileSync(process.env['BENCH_SUPERGRAPH']!, 'utf8') });
const server = new ApolloServer({ gateway, introspection: false });
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(process.env['BENCH_PORT']), host: '127.0.0.1' },
});
console.log(`listening ${new URL(url).port}`);
