// Executes a client operation against the loaded supergraph: plan, run the plan, shape the response
// (aliases, fragments, @skip/@include, null propagation and introspection, as the client asked).
import { computeResponse } from '@apollo/gateway/dist/resultShaping.js';
import type { FieldSelection, Operation } from '@apollo/federation-internals';
import {
  executeSync,
  getOperationAST,
  GraphQLError,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import { executePlan, type ResultMap } from './planExecutor.ts';
import type { Caller, SubgraphFetch } from './subgraphFetcher.ts';
import type { LoadedSupergraph } from './supergraph.ts';

/** One operation of a client, validated against the API schema. */
export interface OperationRequest {
  supergraph: LoadedSupergraph;
  document: DocumentNode;
  operationName?: string | null;
  variables: Record<string, unknown>;
  caller: Caller;
  fetch: SubgraphFetch;
}

/** Executes a query or mutation through its query plan. */
export async function executeOperation(request: OperationRequest): Promise<ExecutionResult> {
  const { supergraph, document, operationName, variables } = request;
  let planned;
  try {
    planned = supergraph.plan(document, operationName);
  } catch (error) {
    return { errors: [asGraphQLError(error)] };
  }
  const { operation, plan } = planned;
  if (plan.node?.kind === 'Subscription') {
    return {
      errors: [
        new GraphQLError('subscriptions need graphql-ws (WebSocket) or SSE', {
          extensions: { code: 'BAD_REQUEST' },
        }),
      ],
    };
  }
  const data: ResultMap = {};
  const errors: GraphQLError[] = [];
  if (plan.node) {
    const context = { ...request, supergraphSchema: supergraph.supergraphSchema, operation, errors };
    await executePlan(context, plan.node, data);
  }
  return shapeResponse(supergraph.schema, document, operationName, operation, variables, data, errors);
}

/** Shapes the merged subgraph data into the response the client's operation asked for. */
export function shapeResponse(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  operation: Operation,
  variables: Record<string, unknown>,
  input: ResultMap,
  errors: GraphQLError[],
): ExecutionResult {
  try {
    const { data, errors: shapingErrors } = computeResponse({
      operation,
      variables,
      input,
      introspectionHandling: (field) => introspect(schema, document, operationName, field, variables),
    });
    const all = errors.length ? errors : shapingErrors.length && !input ? shapingErrors : [];
    return all.length ? { data, errors: all } : { data };
  } catch (error) {
    return { errors: [...errors, asGraphQLError(error)] };
  }
}

function introspect(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  field: FieldSelection,
  variables: Record<string, unknown>,
): unknown {
  const selection = field.expandFragments().toSelectionNode();
  const result = executeSync({
    schema,
    document: {
      kind: Kind.DOCUMENT,
      definitions: [
        {
          kind: Kind.OPERATION_DEFINITION,
          operation: OperationTypeNode.QUERY,
          variableDefinitions: getOperationAST(document, operationName)?.variableDefinitions,
          selectionSet: { kind: Kind.SELECTION_SET, selections: [selection] },
        },
      ],
    },
    rootValue: {},
    variableValues: variables,
  });
  return result.data?.[selection.alias?.value ?? selection.name.value];
}

function asGraphQLError(error: unknown): GraphQLError {
  return error instanceof GraphQLError ? error : new GraphQLError((error as Error).message ?? String(error));
}
