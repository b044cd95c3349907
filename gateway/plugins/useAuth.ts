import type { Plugin, YogaInitialContext } from 'graphql-yoga';
import {
  getOperationAST,
  Kind,
  OperationTypeNode,
  type ExecutionArgs,
  type OperationDefinitionNode,
} from 'graphql';
import { bearerToken, type Principal, type TokenVerifier } from '../../lib/auth.ts';
import { requestError } from '../../lib/errors.ts';

/** The gateway's per-request context: the Fetch request and, when authenticated, the caller. */
export type GatewayContext = YogaInitialContext & { principal?: Principal };

function isIntrospectionOnly(operation: OperationDefinitionNode | null): boolean {
  if (!operation || operation.operation !== OperationTypeNode.QUERY) return false;
  return operation.selectionSet.selections.every(
    (selection) => selection.kind === Kind.FIELD && selection.name.value.startsWith('__'),
  );
}

/**
 * Verifies the bearer token of every operation at the edge (401 UNAUTHENTICATED when missing or
 * invalid); roles are checked by the subgraphs that own each field. Introspection-only queries may
 * go without a token when allowAnonymousIntrospection is set (dev mode).
 */
export function useAuth(options: {
  verifier: TokenVerifier;
  allowAnonymousIntrospection: boolean;
}): Plugin<GatewayContext> {
  return {
    async onContextBuilding({ context, extendContext }) {
      const token = bearerToken(context.request.headers.get('authorization'));
      if (token) extendContext({ principal: await options.verifier.verify(token) });
    },
    onExecute({ args, setResultAndStopExecution }) {
      const { document, operationName, contextValue } = args as ExecutionArgs & {
        contextValue: GatewayContext;
      };
      if (contextValue.principal) return;
      const operation = getOperationAST(document, operationName);
      if (options.allowAnonymousIntrospection && isIntrospectionOnly(operation ?? null)) return;
      setResultAndStopExecution({
        errors: [
          requestError('UNAUTHENTICATED', 'authentication required: send Authorization: Bearer <token>'),
        ],
      });
    },
  };
}
