// Peer: Hive Gateway's runtime (@graphql-hive/gateway) on node:http, one process, no workers.
// Env: BENCH_SUPERGRAPH (file), BENCH_PORT, BENCH_FORWARD_HEADERS (optional). Prints "listening <port>".
import { createGatewayRuntime } from '@graphql-hive/gateway';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FORWARDED_HEADERS, forwardedHeaders } from './forwardHeaders.ts';

const gateway = createGatewayRuntime({
  supergraph: process.env['BENCH_SUPERGRAPH']!,
  logging: false,
  ...(FORWARDED_HEADERS.length > 0 && {
    propagateHeaders: {
      fromClientToSubgraphs: ({ request }) => forwardedHeaders((name) => request.headers.get(name)),
    },
  }),
});
// The runtime's node handler returns a promise that node:http ignores; it settles the response itself.
const server = createServer((req, res) => void gateway(req, res));
server.listen(Number(process.env['BENCH_PORT']), '127.0.0.1', () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});
