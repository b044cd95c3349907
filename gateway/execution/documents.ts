// Parsing and validation of client documents for the WebSocket and SSE transports (yoga has its own),
// cached per schema and query text so that a thousand identical subscriptions parse once. Both paths
// hold documents to the same operation limits (plugins/useOperationLimits.ts).
import { GraphQLError, type DocumentNode, type GraphQLSchema } from 'graphql';
import {
  defaultOperationLimits,
  parseOperation,
  validateOperation,
  type OperationLimits,
} from '../plugins/useOperationLimits.ts';

const MAX_ENTRIES = 1_000;
const caches = new WeakMap<GraphQLSchema, Map<string, DocumentNode | readonly GraphQLError[]>>();
const limitsBySchema = new WeakMap<GraphQLSchema, OperationLimits>();

/**
 * Sets the limits that documents prepared against `schema` are held to; the gateway serving the schema
 * calls it, so the transports, which know the schema only, apply the gateway's limits.
 */
export function limitDocuments(schema: GraphQLSchema, limits: OperationLimits): void {
  limitsBySchema.set(schema, limits);
  caches.delete(schema);
}

/**
 * The validated document of `query`, or the errors that refuse it: GRAPHQL_PARSE_FAILED,
 * GRAPHQL_VALIDATION_FAILED, or the code of each operation limit it breaks.
 */
export function prepareDocument(
  schema: GraphQLSchema,
  query: string,
): DocumentNode | readonly GraphQLError[] {
  let cache = caches.get(schema);
  if (!cache) caches.set(schema, (cache = new Map<string, DocumentNode | readonly GraphQLError[]>()));
  let prepared = cache.get(query);
  if (!prepared) {
    prepared = parseAndValidate(schema, query, limitsBySchema.get(schema) ?? defaultOperationLimits);
    if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(query, prepared);
  }
  return prepared;
}

function parseAndValidate(
  schema: GraphQLSchema,
  query: string,
  limits: OperationLimits,
): DocumentNode | readonly GraphQLError[] {
  let document: DocumentNode;
  try {
    document = parseOperation(query, limits);
  } catch (error) {
    return [withCode(error as Error, 'GRAPHQL_PARSE_FAILED')];
  }
  const errors = validateOperation(schema, document, limits);
  if (errors.length === 0) return document;
  return errors.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
}

/** The error as a transport sends it: its own code (a limit's) or the fallback, without yoga's `http`. */
function withCode(error: Error, fallback: string): GraphQLError {
  if (!(error instanceof GraphQLError))
    return new GraphQLError(error.message, { extensions: { code: fallback } });
  const { http: _http, ...extensions } = error.extensions;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    extensions: { ...extensions, code: extensions['code'] ?? fallback },
  });
}
