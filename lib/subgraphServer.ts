import { buildSubgraphSchema } from '@apollo/subgraph';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse, type DocumentNode, type GraphQLResolveInfo, type GraphQLScalarType } from 'graphql';
import type pg from 'pg';
import { assertRowLevelSecurity, createPool, pingDatabase } from '../db/pool.ts';
import { connectBroker, ensureStreams, pingBroker, type Broker } from '../streams/connection.ts';
import type { Config } from './config.ts';
import { createYoga } from 'graphql-yoga';
import type { AddressInfo } from 'node:net';
import { bearerToken, createTokenVerifier, type Principal, type TokenVerifier } from './auth.ts';
import { requestError } from './errors.ts';
import type { Logger } from './logger.ts';
import {
  closeServer,
  listen,
  withHealthRoutes,
  type ReadinessChecks,
  type RunningService,
} from './service.ts';

/** A resolver; parent and args are typed by each resolver itself. */
export type Resolver<Ctx> = (parent: never, args: never, context: Ctx, info: GraphQLResolveInfo) => unknown;

/** Resolvers of a subgraph: fields, `__resolveReference`, subscriptions, and scalars. */
export type ResolverMap<Ctx> = Record<
  string,
  GraphQLScalarType | Record<string, Resolver<Ctx> | { subscribe: Resolver<Ctx>; resolve?: Resolver<Ctx> }>
>;

// @apollo/subgraph does not export its resolver map type; take it from the function's signature.
type ApolloResolvers = Extract<
  Parameters<typeof buildSubgraphSchema>[0],
  { resolvers?: unknown }
>['resolvers'];

/** What every resolver of a subgraph receives: its dependencies plus the verified caller. */
export type SubgraphContext<Deps> = Deps & { principal: Principal; logger: Logger; requestId: string };

/** Options of a graphql-yoga subgraph. */
export interface SubgraphOptions<Deps> {
  name: string;
  typeDefs: DocumentNode;
  resolvers: ResolverMap<SubgraphContext<Deps>>;
  deps: Deps;
  verifier: TokenVerifier;
  logger: Logger;
  readiness: ReadinessChecks;
  production: boolean;
}

/** Builds the request handler of a federated subgraph that verifies the caller's JWT on every request. */
export function createSubgraphHandler<Deps extends object>(options: SubgraphOptions<Deps>) {
  let draining = false;
  const yoga = createYoga<Record<string, unknown>, SubgraphContext<Deps>>({
    schema: buildSubgraphSchema({
      typeDefs: options.typeDefs,
      resolvers: options.resolvers as ApolloResolvers,
    }),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: false,
    maskedErrors: options.production,
    logging: false,
    // No subgraph trusts anything but a verifiable token: not the gateway, not a tenant header.
    context: async ({ request }) => {
      const token = bearerToken(request.headers.get('authorization'));
      if (!token)
        throw requestError('UNAUTHENTICATED', 'authentication required: send Authorization: Bearer <token>');
      const principal = await options.verifier.verify(token);
      const requestId = request.headers.get('x-request-id') ?? randomUUID();
      const logger = options.logger.child({ tenant: principal.tenant, requestId });
      return { ...options.deps, principal, logger, requestId };
    },
  });
  return {
    handler: withHealthRoutes(
      (req, res) => void yoga(req, res),
      options.readiness,
      () => draining,
    ),
    drain: () => {
      draining = true;
    },
  };
}

/** Starts a yoga subgraph on host:port (0 picks a free port); closing drains, then runs onClose. */
export async function startSubgraph<Deps extends object>(
  options: SubgraphOptions<Deps> & { port: number; host: string; onClose: () => Promise<void> },
): Promise<RunningService> {
  const { handler, drain } = createSubgraphHandler(options);
  const server = await listen(handler, options.port, options.host);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}/graphql`,
    async close() {
      drain();
      await closeServer(server);
      await options.onClose();
    },
  };
}

/** What every yoga subgraph of the platform gets: the tenant-scoped pool and the broker. */
export interface PlatformDeps {
  pool: pg.Pool;
  broker: Broker;
}

/** Starts a subgraph with the platform's Postgres pool (RLS-checked), NATS broker, token verifier and probes. */
export async function startPlatformSubgraph(options: {
  name: string;
  schemaUrl: URL;
  resolvers: ResolverMap<SubgraphContext<PlatformDeps>>;
  config: Config;
  logger: Logger;
  port: number;
}): Promise<RunningService> {
  const { config, logger } = options;
  const pool = createPool(config.DATABASE_URL!, config.DATABASE_POOL_SIZE);
  await assertRowLevelSecurity(pool);
  const broker = await connectBroker(config.NATS_URL!, options.name, logger);
  await ensureStreams(broker.nc);
  return startSubgraph({
    name: options.name,
    typeDefs: parse(readFileSync(options.schemaUrl, 'utf8')),
    resolvers: options.resolvers,
    deps: { pool, broker },
    verifier: await createTokenVerifier(config),
    logger,
    readiness: { postgres: () => pingDatabase(pool), nats: () => pingBroker(broker.nc) },
    production: config.NODE_ENV === 'production',
    port: options.port,
    host: config.HOST,
    onClose: async () => {
      await broker.close();
      await pool.end();
    },
  });
}
