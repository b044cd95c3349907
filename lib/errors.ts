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
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
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
