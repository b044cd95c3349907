// Parsing and validation of client documents for the WebSocket and SSE transports (yoga has its own),
// cached per schema and query text so that a thousand identical subscriptions parse once.
import { GraphQLError, parse, validate, type DocumentNode, type GraphQLSchema } from 'graphql';

const MAX_ENTRIES = 1_000;
const caches = new WeakMap<GraphQLSchema, Map<string, DocumentNode | readonly GraphQLError[]>>();

/** The validated document of `query`, or the errors that refuse it (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED). */
export function prepareDocument(
  schema: GraphQLSchema,
  query: string,
): DocumentNode | readonly GraphQLError[] {
  let cache = caches.get(schema);
  if (!cache) caches.set(schema, (cache = new Map<string, DocumentNode | readonly GraphQLError[]>()));
  let prepared = cache.get(query);
  if (!prepared) {
    prepared = parseAndValidate(schema, query);
    if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(query, prepared);
  }
  return prepared;
}

function parseAndValidate(schema: GraphQLSchema, query: string): DocumentNode | readonly GraphQLError[] {
  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: 10_000 });
  } catch (error) {
    const { message } = error as Error;
    return [new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
  }
  const errors = validate(schema, document);
  if (errors.length === 0) return document;
  return errors.map(
    (e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }),
  );
}
