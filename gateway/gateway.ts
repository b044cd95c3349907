import {
  ApolloGateway,
  RemoteGraphQLDataSource,
  type GraphQLDataSourceProcessOptions,
} from '@apollo/gateway';
import { useApolloFederation } from '@envelop/apollo-federation';
import { GraphQLError } from 'graphql';
import { createYoga, maskError } from 'graphql-yoga';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, fetch as undiciFetch } from 'undici';
import type { TokenVerifier } from '../lib/auth.ts';
import type { Logger } from '../lib/logger.ts';
import { useAuth, type GatewayContext } from './plugins/useAuth.ts';

/** Options of the federated gateway. */
export interface GatewayOptions {
  supergraphSdl: string;
  /** Routing URL overrides by subgraph name (e.g. container host names). */
  subgraphUrls: Record<string, string | undefined>;
  verifier: TokenVerifier;
  logger: Logger;
  production: boolean;
  allowAnonymousIntrospection: boolean;
  subgraphTimeoutMs: number;
}

/** Forwards the caller's Authorization and request id to every subgraph fetch. */
class AuthForwardingDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    const incoming = (context as Partial<GatewayContext>).request?.headers;
    const authorization = incoming?.get('authorization');
    if (authorization) request.http?.headers.set('authorization', authorization);
    const requestId = incoming?.get('x-request-id');
    if (requestId) request.http?.headers.set('x-request-id', requestId);
  }
}

/**
 * Masks unexpected errors in production, but keeps the ones the platform raises on purpose: a
 * subgraph's error arrives with its stable `extensions.code` (subgraphs mask their own unexpected
 * errors), and yoga's default would hide it as "Unexpected error.".
 */
function keepPlatformErrors(error: unknown, message: string, isDev?: boolean): Error {
  const code = error instanceof GraphQLError ? error.extensions['code'] : undefined;
  if (typeof code === 'string' && code !== 'INTERNAL_SERVER_ERROR') return error as GraphQLError;
  return maskError(error, message, isDev);
}

/** Builds the gateway: @apollo/gateway over the supergraph, served by graphql-yoga. */
export async function createGateway(options: GatewayOptions) {
  // One keep-alive pool per process for all subgraph traffic.
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 128, pipelining: 1 });
  const fetcher = ((url: string, init: Parameters<typeof undiciFetch>[1]) =>
    undiciFetch(url, {
      ...init,
      dispatcher: agent,
      signal: AbortSignal.timeout(options.subgraphTimeoutMs),
    })) as unknown as RemoteGraphQLDataSource['fetcher'];
  const subgraphUrls: Record<string, string> = {};
  // @apollo/gateway otherwise sends usage metrics to Apollo and probes cloud metadata addresses
  // (169.254.169.254) from every gateway; an operator who wants that sets APOLLO_TELEMETRY_DISABLED=false.
  process.env['APOLLO_TELEMETRY_DISABLED'] ??= 'true';
  const gateway = new ApolloGateway({
    supergraphSdl: options.supergraphSdl,
    logger: options.logger,
    buildService: ({ name, url }) => {
      const target = options.subgraphUrls[name] ?? url!;
      subgraphUrls[name] = target;
      return new AuthForwardingDataSource({ url: target, fetcher });
    },
  });
  await gateway.load();
  const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }, GatewayContext>({
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: false,
    logging: false,
    maskedErrors: options.production ? { maskError: keepPlatformErrors } : false,
    plugins: [
      useAuth({
        verifier: options.verifier,
        allowAnonymousIntrospection: options.allowAnonymousIntrospection,
      }),
      useApolloFederation({ gateway, logger: options.logger }),
    ],
  });
  return {
    yoga,
    /** Subgraph name -> the URL the gateway routes to. */
    subgraphUrls,
    async close() {
      await gateway.stop();
      await agent.close();
    },
  };
}
