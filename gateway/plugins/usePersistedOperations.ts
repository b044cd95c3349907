// Persisted operations over HTTP (POST and GET): yoga's adapter of gateway/persistedOperations.ts, which
// the WebSocket and SSE transports call directly. Not @graphql-yoga/plugin-persisted-operations or
// plugin-apq: the first cannot let a manifest operation's full text through while refusing others (its
// allowArbitraryOperations sees the Request, not the query), yoga's GET parser drops `documentId`, and
// useAPQ stores a document before it is validated; the core holds one behaviour for every transport.
import { GraphQLError, type ExecutionArgs } from 'graphql';
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { ErrorCode, errorCodeOf } from '../../lib/errors.ts';
import type { PersistedOperations } from '../persistedOperations.ts';

/** The error with the HTTP status of its code (yoga reads `extensions.http`, and strips it from the body). */
function withHttpStatus(error: GraphQLError): GraphQLError {
  const status = ErrorCode[errorCodeOf(error) ?? 'BAD_REQUEST'];
  return new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status } } });
}

/** `documentId` of a POST body (yoga keeps unknown body fields in params) or of a GET's query string. */
function documentIdOf(params: GraphQLParams, request: Request): unknown {
  const fromBody = (params as GraphQLParams & { documentId?: unknown }).documentId;
  if (fromBody != null || request.method !== 'GET') return fromBody;
  return new URL(request.url).searchParams.get('documentId') ?? undefined;
}

/**
 * Resolves each request's document by `documentId` or `extensions.persistedQuery` before yoga parses
 * it, and refuses what persisted-only mode forbids. An APQ registration is stored at execution, so
 * only once the document has been validated; place it after useAuth, whose onExecute stops anonymous
 * requests first, and before any plugin that reads `params.query`.
 */
export function usePersistedOperations(persisted: PersistedOperations): Plugin {
  const registrations = new WeakMap<object, () => Promise<void>>();
  return {
    async onParams({ params, request, setParams, context }) {
      const resolved = await persisted.resolve({
        query: params.query,
        documentId: documentIdOf(params, request),
        extensions: params.extensions,
      });
      if (resolved instanceof GraphQLError) throw withHttpStatus(resolved);
      // Without documentId: yoga refuses parameters it does not know.
      const { documentId: _documentId, ...known } = params as GraphQLParams & { documentId?: unknown };
      setParams({ ...known, query: resolved.query });
      if (resolved.register) registrations.set(context, resolved.register);
    },
    async onExecute({ args }) {
      const register = registrations.get((args as ExecutionArgs).contextValue as object);
      if (register) await register();
    },
  };
}
