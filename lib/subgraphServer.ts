import { buildSubgraphSchema } from '@apollo/subgraph';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  defaultFieldResolver,
  getNamedType,
  isAbstractType,
  isObjectType,
  parse,
  type DocumentNode,
  type GraphQLFieldResolver,
  type GraphQLNamedType,
  type GraphQLResolveInfo,
  type GraphQLScalarType,
  type GraphQLSchema,
} from 'graphql';
import type pg from 'pg';
import { assertRowLevelSecurity, createPool, pingDatabase } from '../db/pool.ts';
import { createReadPool, type ReadPool } from '../db/readPool.ts';
import { connectBroker, ensureStreams, pingBroker, type Broker } from '../streams/connection.ts';
import type { Config } from './config.ts';
import { createYoga } from 'graphql-yoga';
import type { AddressInfo } from 'node:net';
import {
  bearerToken,
  createTokenVerifier,
  requiredScopesOf,
  requireScopes,
  type Principal,
  type ScopeRequirement,
  type TokenVerifier,
} from './auth.ts';
import { requestError } from './errors.ts';
import { createHttpTransport } from './httpTransport.ts';
import type { Logger } from './logger.ts';
import { useRequestMetrics } from './requestMetrics.ts';
import { ATTR_OPERATION, ATTR_TENANT, traceHttpRequest } from './telemetry.ts';
import { trace } from '@opentelemetry/api';
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
  /** Longest request URL of a GET (MAX_URL_BYTES). */
  maxUrlBytes: number;
}

/**
 * Largest request body a subgraph reads: the gateway's batched entity fetches carry many representations,
 * so this is yoga's own default, not the gateway's MAX_BODY_BYTES for client requests.
 */
const SUBGRAPH_MAX_BODY_BYTES = 25_000_000;

type FieldResolver = GraphQLFieldResolver<unknown, { principal?: Principal }>;

/** The @requiresScopes a type carries, on its definition or on one of its extensions. */
function typeRequirement(type: GraphQLNamedType): ScopeRequirement | undefined {
  const nodes = [type.astNode, ...type.extensionASTNodes];
  return nodes.map((node) => requiredScopesOf(node?.directives)).find((r) => r !== undefined);
}

/** A resolver that first holds the caller to the requirements (FORBIDDEN, as `authorize` throws it). */
function guarded(resolve: FieldResolver, requirements: readonly ScopeRequirement[]): FieldResolver {
  return (source, args, context, info) => {
    requireScopes(context.principal, requirements);
    return resolve(source, args, context, info);
  };
}

/**
 * Enforces the schema's @requiresScopes inside the subgraph, so that a request sent straight to it is held
 * to what the gateway checks: a field carrying it, or returning a type that carries it, checks the caller's
 * scopes before its resolver (a subscription: before subscribing) runs, and `_entities` refuses each
 * representation of a type carrying it before resolving the reference. Changes the schema's resolvers in
 * place (graphql-yoga and mercurius store `__resolveReference` differently; both resolve `_entities`).
 */
export function enforceRequiredScopes(schema: GraphQLSchema): GraphQLSchema {
  const ofType = new Map<string, ScopeRequirement>();
  for (const type of Object.values(schema.getTypeMap())) {
    const own = typeRequirement(type);
    if (own) ofType.set(type.name, own);
  }
  const ofReturned = (type: GraphQLNamedType) =>
    (isAbstractType(type) ? [type, ...schema.getPossibleTypes(type)] : [type]).map((t) => ofType.get(t.name));
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      if (type === schema.getQueryType() && field.name === '_entities') continue; // each representation, below
      const requirements = [
        requiredScopesOf(field.astNode?.directives),
        ...ofReturned(getNamedType(field.type)),
      ].filter((r): r is ScopeRequirement => r !== undefined);
      if (requirements.length === 0) continue;
      if (field.subscribe) field.subscribe = guarded(field.subscribe, requirements);
      else field.resolve = guarded(field.resolve ?? defaultFieldResolver, requirements);
    }
  }
  const entities = schema.getQueryType()?.getFields()['_entities'];
  const resolveEntities = entities?.resolve;
  if (entities && resolveEntities && ofType.size > 0) {
    entities.resolve = async (
      source,
      args: { representations: Array<{ __typename: string }> },
      context,
      info,
    ) => {
      // A refused representation becomes an error in its place: that item is null, the others resolve.
      const refusals = args.representations.map((representation) => {
        const required = ofType.get(representation.__typename);
        try {
          if (required) requireScopes((context as { principal?: Principal }).principal, [required]);
          return undefined;
        } catch (error) {
          return error as Error;
        }
      });
      if (refusals.every((refusal) => refusal === undefined))
        return resolveEntities(source, args, context, info);
      const representations = args.representations.filter((_, i) => refusals[i] === undefined);
      const resolved = (await resolveEntities(
        source,
        { ...args, representations },
        context,
        info,
      )) as unknown[];
      let next = 0;
      return refusals.map((refusal) => refusal ?? resolved[next++]);
    };
  }
  return schema;
}

/** Builds the request handler of a federated subgraph that verifies the caller's JWT on every request. */
export function createSubgraphHandler<Deps extends object>(options: SubgraphOptions<Deps>) {
  let draining = false;
  const yoga = createYoga<Record<string, unknown>, SubgraphContext<Deps>>({
    schema: enforceRequiredScopes(
      buildSubgraphSchema({
        typeDefs: options.typeDefs,
        resolvers: options.resolvers as ApolloResolvers,
      }),
    ),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: false,
    maskedErrors: options.production,
    logging: false,
    // Bounded in front of yoga, as in the gateway (lib/httpTransport.ts).
    maxRequestBodySize: false,
    // A JSON array of up to 10 operations is one batch (the gateway's SUBGRAPH_BATCHING sends them).
    batching: true,
    plugins: [useRequestMetrics(options.name)],
    // No subgraph trusts anything but a verifiable token: not the gateway, not a tenant header.
    context: async ({ request, params }) => {
      const token = bearerToken(request.headers.get('authorization'));
      if (!token)
        throw requestError('UNAUTHENTICATED', 'authentication required: send Authorization: Bearer <token>');
      const principal = await options.verifier.verify(token);
      const requestId = request.headers.get('x-request-id') ?? randomUUID();
      const operationName = params.operationName ?? undefined;
      trace.getActiveSpan()?.setAttributes({
        [ATTR_TENANT]: principal.tenant,
        ...(operationName ? { [ATTR_OPERATION]: operationName } : {}),
      });
      const logger = options.logger.child({
        tenant: principal.tenant,
        requestId,
        operationName,
      });
      return { ...options.deps, principal, logger, requestId };
    },
  });
  const serveHttp = createHttpTransport({
    yoga,
    maxBodyBytes: SUBGRAPH_MAX_BODY_BYTES,
    maxUrlBytes: options.maxUrlBytes,
  });
  return {
    handler: withHealthRoutes(
      (req, res) => traceHttpRequest(options.name, req, res, serveHttp),
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

/** What every yoga subgraph of the platform gets: the tenant-scoped pools and the broker. */
export interface PlatformDeps {
  pool: pg.Pool;
  /** For reads that tolerate a little lag: the read replica if DATABASE_READ_URL is set, else the primary. */
  readPool: ReadPool;
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
  const pool = createPool(config.DATABASE_URL!, config.DATABASE_POOL_SIZE, options.name);
  await assertRowLevelSecurity(pool);
  const readPool = await createReadPool(pool, config.DATABASE_READ_URL, {
    max: config.DATABASE_POOL_SIZE,
    name: options.name,
    logger,
  });
  const broker = await connectBroker(config.NATS_URL!, options.name, logger);
  await ensureStreams(broker.nc);
  return startSubgraph({
    name: options.name,
    typeDefs: parse(readFileSync(options.schemaUrl, 'utf8')),
    resolvers: options.resolvers,
    deps: { pool, readPool, broker },
    verifier: await createTokenVerifier(config),
    logger,
    readiness: { postgres: () => pingDatabase(pool), nats: () => pingBroker(broker.nc) },
    production: config.NODE_ENV === 'production',
    maxUrlBytes: config.MAX_URL_BYTES,
    port: options.port,
    host: config.HOST,
    onClose: async () => {
      await broker.close();
      await readPool.end();
      await pool.end();
    },
  });
}
