import type { Plugin, YogaInitialContext } from 'graphql-yoga';
import {
  getOperationAST,
  type GraphQLError,
  Kind,
  OperationTypeNode,
  type ExecutionArgs,
  type OperationDefinitionNode,
} from 'graphql';
import { bearerToken, type Principal, type TokenVerifier } from '../../lib/auth.ts';
import { requestError } from '../../lib/errors.ts';

// Verified when the request's parameters are read, before parsing and validation, so that a caller
// without a valid token learns nothing of the schema from validation errors; kept for the context.
const principals = new WeakMap<Request, Principal>();

/** The caller of a request whose token useAuth has verified (from its onParams on). */
export const verifiedPrincipalOf = (request: Request): Principal | undefined => principals.get(request);

/** The gateway's per-request context: the Fetch request and, when authenticated, the caller. */
export type GatewayContext = YogaInitialContext & { principal?: Principal };

const unauthenticated = () =>
  requestError('UNAUTHENTICATED', 'authentication required: send Authorization: Bearer <token>');

function isIntrospectionOnly(operation: OperationDefinitionNode | null): boolean {
  if (!operation || operation.operation !== OperationTypeNode.QUERY) return false;
  return operation.selectionSet.selections.every(
    (selection) => selection.kind === Kind.FIELD && selection.name.value.startsWith('__'),
  );
}

/**
 * Verifies the bearer token of every operation at the edge (401 UNAUTHENTICATED when missing or
 * invalid); scopes per field are checked by useFieldAuthorization. Introspection-only queries may
 * go without a token when allowAnonymousIntrospection is set (dev mode); otherwise a request without
 * one is refused before its document is even parsed.
 */
export function useAuth(options: {
  verifier: TokenVerifier;
  allowAnonymousIntrospection: boolean;
}): Plugin<GatewayContext> {
  return {
    async onParams({ request, setResult }) {
      const token = bearerToken(request.headers.get('authorization'));
      if (!token) {
        if (!options.allowAnonymousIntrospection) setResult({ errors: [unauthenticated()] });
        return;
      }
      try {
        principals.set(request, await options.verifier.verify(token));
      } catch (error) {
        setResult({ errors: [error as GraphQLError] });
      }
    },
    onContextBuilding({ context, extendContext }) {
      const principal = principals.get(context.request);
      if (principal) extendContext({ principal });
    },
    onExecute({ args, setResultAndStopExecution }) {
      const { document, operationName, contextValue } = args as ExecutionArgs & {
        contextValue: GatewayContext;
      };
      if (contextValue.principal) return;
      const operation = getOperationAST(document, operationName);
      if (options.allowAnonymousIntrospection && isIntrospectionOnly(operation ?? null)) return;
      setResultAndStopExecution({ errors: [unauthenticated()] });
    },
  };
}
