import { GraphQLError } from 'graphql';

/** Every error code a client can see in `extensions.code`, with the HTTP status it maps to. */
export const ErrorCode = {
  BAD_USER_INPUT: 400,
  BAD_REQUEST: 400,
  GRAPHQL_PARSE_FAILED: 400,
  GRAPHQL_VALIDATION_FAILED: 400,
  // Operation limits (gateway/plugins/useOperationLimits.ts): refused before planning, no subgraph called.
  MAX_DEPTH_EXCEEDED: 400,
  MAX_ALIASES_EXCEEDED: 400,
  MAX_ROOT_FIELDS_EXCEEDED: 400,
  MAX_TOKENS_EXCEEDED: 400,
  MAX_DIRECTIVES_EXCEEDED: 400,
  MAX_COST_EXCEEDED: 400,
  // Introspection is off (production, unless INTROSPECTION=true).
  INTROSPECTION_DISABLED: 400,
  // More subscriptions on one graphql-ws connection than MAX_SUBSCRIPTIONS_PER_CONNECTION.
  MAX_SUBSCRIPTIONS_EXCEEDED: 400,
  // APQ: the sha256Hash sent with a query is not the query's SHA-256 (gateway/persistedOperations.ts).
  PERSISTED_QUERY_HASH_MISMATCH: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  // A GET or simple POST without a header that forces a CORS preflight (gateway/plugins/useCsrfPrevention.ts).
  CSRF_PREVENTED: 403,
  // PERSISTED_ONLY=true and the operation is not in the manifest: a well-formed request refused by
  // policy, so 403 rather than 400 (as Apollo's router answers freeform GraphQL outside its safelist).
  PERSISTED_QUERY_NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  // A documentId or APQ hash neither in the manifest nor the APQ store: an APQ client retries with the
  // text (404 as @graphql-yoga/plugin-apq answers; Apollo's clients read the body of any status).
  PERSISTED_QUERY_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL_SERVER_ERROR: 500,
  NOT_IMPLEMENTED: 501,
  SERVICE_UNAVAILABLE: 503,
} as const;

/** A stable error code of the platform. */
export type ErrorCodeName = keyof typeof ErrorCode;

/** Builds a GraphQL error for one field (partial results stay HTTP 200) with a stable code and detail fields. */
export function appError(
  code: ErrorCodeName,
  message: string,
  extra: Record<string, unknown> = {},
): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extra } });
}

/** Builds an error that rejects the whole HTTP request, answered with the code's HTTP status. */
export function requestError(code: ErrorCodeName, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: ErrorCode[code] } } });
}

/** The code carried by an error raised through appError, if any. */
export function errorCodeOf(error: unknown): ErrorCodeName | undefined {
  if (!(error instanceof GraphQLError)) return undefined;
  const code = error.extensions['code'];
  return typeof code === 'string' && code in ErrorCode ? (code as ErrorCodeName) : undefined;
}
