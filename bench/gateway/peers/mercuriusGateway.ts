// Peer: @mercuriusjs/gateway (Federation 1) on Fastify; it composes the subgraphs' `_service { sdl }`.
// Env: BENCH_SUBGRAPHS (JSON { name: url }), BENCH_PORT, BENCH_FORWARD_HEADERS and BENCH_INIT_AUTHORIZATION
// (the Authorization header of its `_service` fetches at start; both optional). Prints "listening <port>".
import { visit, type ASTNode } from 'graphql';
import { createRequire } from 'node:module';
import { FORWARDED_HEADERS, forwardedHeaders } from './forwardHeaders.ts';

// @mercuriusjs/gateway 5.2.0 builds inline fragments whose type condition's Name holds a GraphQLObjectType
// rather than a string, which graphql 16.15's printer rejects ("value.includes is not a function"). The
// peer gets a printer that retries such a document with its names as strings; mercurius caches what it
// prints per selection, so the retry costs once per distinct subgraph operation.
const require = createRequire(import.meta.url);
const printer = require('graphql/language/printer') as { print: (ast: ASTNode) => string };
const print = printer.print;
printer.print = (ast) => {
  try {
    return print(ast);
  } catch {
    const named = (node: { value: unknown }) =>
      typeof node.value === 'string' ? undefined : { ...node, value: String(node.value) };
    return print(visit(ast, { Name: named }));
  }
};

const { default: mercuriusGatewayModule } = await import('@mercuriusjs/gateway');
const { default: Fastify } = await import('fastify');
// A CommonJS module whose types declare `export default`: at run time the import is the plugin itself.
const mercuriusGateway = mercuriusGatewayModule as unknown as typeof mercuriusGatewayModule.default;
const subgraphs = JSON.parse(process.env['BENCH_SUBGRAPHS']!) as Record<string, string>;
const app = Fastify({ logger: false });
const init = process.env['BENCH_INIT_AUTHORIZATION'];
const forwarding = {
  ...(init ? { initHeaders: { authorization: init } } : {}),
  ...(FORWARDED_HEADERS.length > 0 && {
    rewriteHeaders: (headers: Record<string, unknown>) =>
      forwardedHeaders((name) => headers[name]?.toString()),
  }),
};
await app.register(mercuriusGateway, {
  gateway: { services: Object.entries(subgraphs).map(([name, url]) => ({ name, url, ...forwarding })) },
});
await app.listen({ port: Number(process.env['BENCH_PORT']), host: '127.0.0.1' });
const address = app.server.address();
console.log(`listening ${typeof address === 'object' && address ? address.port : ''}`);
