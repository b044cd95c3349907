// One loaded supergraph: the client-facing schema, the query planner and what the subscription engine
// needs (each subgraph's own schema, the @jetstream bindings). A reload builds a new one and swaps it.
import {
  DEFAULT_SUPPORTED_SUPERGRAPH_FEATURES,
  operationFromDocument,
  Supergraph,
  type Operation,
  type Schema,
} from '@apollo/federation-internals';
import { QueryPlanner, type QueryPlan } from '@apollo/query-planner';
import type { DocumentNode, GraphQLSchema } from 'graphql';
import { readBindings, type StreamBinding } from '../subscriptions/bindings.ts';

/** A plan for one operation of a document. */
export interface PlannedOperation {
  operation: Operation;
  plan: QueryPlan;
}

/** What executing operations against one version of the supergraph needs. */
export interface LoadedSupergraph {
  sdl: string;
  /** The client-facing API schema (graphql-js): validation and introspection. */
  schema: GraphQLSchema;
  apiSchema: Schema;
  /** The supergraph schema (graphql-js): type conditions and data rewrites of plans. */
  supergraphSchema: GraphQLSchema;
  /** Subgraph name -> routing URL from the supergraph. */
  routingUrls: Map<string, string>;
  /** Subgraph name -> that subgraph's own schema, to read event payloads as the subgraph would. */
  subgraphSchemas: Map<string, GraphQLSchema>;
  /** Subscription field name -> its JetStream binding. */
  bindings: Map<string, StreamBinding>;
  /** Plans an operation of a validated document (cached per document and operation name). */
  plan(document: DocumentNode, operationName?: string | null): PlannedOperation;
}

// A supergraph links @requiresScopes "for: SECURITY": a gateway must refuse it unless it enforces it, as
// plugins/useFieldAuthorization.ts does.
const SUPPORTED_FEATURES = new Set([
  ...DEFAULT_SUPPORTED_SUPERGRAPH_FEATURES,
  'https://specs.apollo.dev/requiresScopes/v0.1',
]);

/** Builds the planner and schemas of a supergraph SDL; throws with the reason when it is not valid. */
export function loadSupergraph(sdl: string): LoadedSupergraph {
  const supergraph = Supergraph.build(sdl, { supportedFeatures: SUPPORTED_FEATURES });
  const apiSchema = supergraph.apiSchema();
  const planner = new QueryPlanner(supergraph);
  const subgraphs = supergraph.subgraphs();
  const routingUrls = new Map<string, string>();
  const subgraphSchemas = new Map<string, GraphQLSchema>();
  for (const subgraph of subgraphs) {
    routingUrls.set(subgraph.name, subgraph.url);
    subgraphSchemas.set(subgraph.name, subgraph.schema.toGraphQLJSSchema());
  }
  const plans = new WeakMap<DocumentNode, Map<string, PlannedOperation>>();
  return {
    sdl,
    schema: apiSchema.toGraphQLJSSchema(),
    apiSchema,
    supergraphSchema: supergraph.schema.toGraphQLJSSchema(),
    routingUrls,
    subgraphSchemas,
    bindings: readBindings(supergraph.schema),
    plan(document, operationName) {
      let byName = plans.get(document);
      if (!byName) plans.set(document, (byName = new Map<string, PlannedOperation>()));
      const key = operationName ?? '';
      let planned = byName.get(key);
      if (!planned) {
        const operation = operationFromDocument(apiSchema, document, {
          operationName: operationName ?? undefined,
          validate: false,
        });
        planned = { operation, plan: planner.buildQueryPlan(operation) };
        byName.set(key, planned);
      }
      return planned;
    },
  };
}
