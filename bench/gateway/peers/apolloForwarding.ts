// Header forwarding for the @apollo/gateway peers: the request context keeps the forwarded headers as
// `forwarded` (forwardHeaders.ts), and each subgraph request gets them from there.
import { RemoteGraphQLDataSource, type ServiceEndpointDefinition } from '@apollo/gateway';
import { FORWARDED_HEADERS } from './forwardHeaders.ts';

/** The context the @apollo/gateway peers' data sources read. */
export interface ForwardingContext {
  forwarded?: Record<string, string>;
}

/** @apollo/gateway's buildService when headers are forwarded; undefined (its default data source) otherwise. */
export function forwardingDataSources() {
  if (!FORWARDED_HEADERS.length) return undefined;
  return ({ url }: ServiceEndpointDefinition) =>
    new RemoteGraphQLDataSource<ForwardingContext>({
      url,
      willSendRequest({ request, context }) {
        // Schema loads and health checks have no request context: nothing to forward then.
        for (const [name, value] of Object.entries((context as ForwardingContext).forwarded ?? {}))
          request.http?.headers.set(name, value);
      },
    });
}
