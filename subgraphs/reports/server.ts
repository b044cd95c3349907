import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { register } from 'prom-client';
import { mercuriusFederationPlugin } from '@mercuriusjs/federation';
import Fastify, { type FastifyRequest } from 'fastify';
import type { GraphQLError } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { assertRowLevelSecurity, createPool, pingDatabase } from '../../db/pool.ts';
import { bearerToken, createTokenVerifier, type Principal } from '../../lib/auth.ts';
import type { Config } from '../../lib/config.ts';
import { errorCodeOf, ErrorCode } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { createRedisPubSub, pingRedis } from '../../lib/redis.ts';
import { traceHttpRequest } from '../../lib/telemetry.ts';
import { enforceRequiredScopes } from '../../lib/subgraphServer.ts';
import { checkReadiness, isMainModule, runService, type RunningService } from '../../lib/service.ts';
import { connectBroker, ensureStreams, pingBroker } from '../../streams/connection.ts';
import { resolvers, type ReportsContext } from './resolvers.ts';

const schema = readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8');

/** What mercurius passes onConnect as `this` (its connection; not in its types), of which we use two parts. */
interface SubscriptionConnection {
  context: { request: FastifyRequest };
  socket: { close(code: number, reason: string): void };
}

/**
 * Starts the reports subgraph on Fastify + mercurius, verifying the caller's JWT on every request and
 * every WebSocket (graphql-transport-ws) connection; report progress comes from Redis pub/sub.
 */
export async function startReports(config: Config, logger: Logger): Promise<RunningService> {
  const pool = createPool(config.DATABASE_URL!, config.DATABASE_POOL_SIZE);
  await assertRowLevelSecurity(pool);
  const broker = await connectBroker(config.NATS_URL!, 'reports', logger);
  await ensureStreams(broker.nc);
  const redis = createRedisPubSub(config.REDIS_URL!, logger);
  const verifier = await createTokenVerifier(config);
  const readiness = {
    postgres: () => pingDatabase(pool),
    nats: () => pingBroker(broker.nc),
    redis: () => pingRedis(redis),
  };
  const contextOf = (principal: Principal): ReportsContext => ({
    principal,
    logger: logger.child({ tenant: principal.tenant }),
    pool,
    broker,
    redis,
  });
  let draining = false;

  const app = Fastify({
    bodyLimit: 1_048_576,
    // Each request runs inside its span, continuing the gateway's trace (traceparent).
    serverFactory: (handler) => createServer((req, res) => traceHttpRequest('reports', req, res, handler)),
  });
  app.decorateRequest('principal', null);
  // No subgraph trusts anything but a verifiable token: not the gateway, not a tenant header.
  app.addHook('onRequest', async (request, reply) => {
    // A WebSocket authenticates at connection_init instead (onConnect): browsers cannot set its headers.
    if (!request.url.startsWith('/graphql') || (request.raw as { upgrade?: boolean }).upgrade) return;
    try {
      const token = bearerToken(request.headers.authorization);
      if (!token) throw new Error('authentication required: send Authorization: Bearer <token>');
      (request as unknown as { principal: Principal }).principal = await verifier.verify(token);
    } catch (error) {
      const message = (error as Error).message;
      await reply
        .code(ErrorCode.UNAUTHENTICATED)
        .send({ errors: [{ message, extensions: { code: 'UNAUTHENTICATED' } }] });
    }
  });
  await app.register(mercuriusFederationPlugin, {
    schema,
    resolvers: resolvers as never,
    // The schema's @requiresScopes, checked here as in every subgraph; run once mercurius holds the resolvers.
    schemaTransforms: [enforceRequiredScopes],
    graphiql: false,
    context: (request) => contextOf((request as unknown as { principal: Principal }).principal),
    subscription: {
      // The token comes in connectionParams, else in the upgrade request. A refusal closes with 4403 as
      // graphql-transport-ws says: returning false alone makes mercurius send a connection_error,
      // a message of the older protocol that graphql-ws clients reject as malformed.
      async onConnect(this: SubscriptionConnection, { payload }) {
        const params = payload as { authorization?: unknown } | undefined;
        const header =
          typeof params?.authorization === 'string'
            ? params.authorization
            : this.context.request.headers.authorization;
        const token = bearerToken(header);
        const principal = token ? await verifier.verify(token).catch(() => undefined) : undefined;
        if (principal) return contextOf(principal);
        this.socket.close(CloseCode.Forbidden, 'Forbidden');
        return false;
      },
    },
    // Keep each error's stable code; execution errors answer 200 like the yoga subgraphs, so that
    // the gateway merges them into partial results. Unexpected errors are masked in production.
    errorFormatter: (execution) => {
      const errors = (execution.errors ?? []) as GraphQLError[];
      // An error without an originalError comes from parsing or validation, not from a resolver.
      const codes = errors.map(
        (e) =>
          errorCodeOf(e.originalError ?? e) ?? (e.originalError ? undefined : 'GRAPHQL_VALIDATION_FAILED'),
      );
      return {
        statusCode: 200,
        response: {
          data: execution.data ?? null,
          errors: errors.map((e, i) => ({
            message: codes[i] || config.NODE_ENV !== 'production' ? e.message : 'Unexpected error.',
            locations: e.locations,
            path: e.path,
            extensions: { code: codes[i] ?? 'INTERNAL_SERVER_ERROR' },
          })),
        },
      };
    },
  });
  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', register.contentType).send(await register.metrics()),
  );
  app.get('/readyz', async (_request, reply) => {
    const { ready, checks } = await checkReadiness(readiness);
    const ok = ready && !draining;
    return reply
      .code(ok ? 200 : 503)
      .send({ status: ok ? 'ready' : draining ? 'draining' : 'degraded', checks });
  });
  const address = await app.listen({ port: config.REPORTS_PORT, host: config.HOST });
  return {
    url: `${address}/graphql`,
    async close() {
      draining = true;
      await app.close();
      await redis.close();
      await broker.close();
      await pool.end();
    },
  };
}

if (isMainModule(import.meta.url))
  await runService('reports', ['DATABASE_URL', 'NATS_URL', 'REDIS_URL'], startReports);
