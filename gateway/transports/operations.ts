// What the WebSocket and SSE transports share: a client's operation turned into a result or a queue
// of results, through the gateway's executor and subscription engine.
import {
  getOperationAST,
  GraphQLError,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionResult,
} from 'graphql';
import { authorize, type Principal } from '../../lib/auth.ts';
import { prepareDocument } from '../execution/documents.ts';
import { checkOperationCost } from '../plugins/useOperationLimits.ts';
import { executeOperation } from '../execution/execute.ts';
import type { Caller } from '../execution/subgraphFetcher.ts';
import type { Gateway } from '../gateway.ts';
import type { Outbox } from '../subscriptions/outbox.ts';

/** A GraphQL request as transports receive it. */
export interface OperationPayload {
  query: string;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
}

/** How the operation is run for one client. */
export interface OperationOptions {
  principal: Principal;
  caller: Caller;
  transport: 'ws' | 'sse';
  resumeAfter?: string;
  onOverflow: () => void;
}

/** A prepared operation: its validated document and whether it is a subscription. */
export interface PreparedOperation {
  document: DocumentNode;
  subscription: boolean;
}

/**
 * Parses and validates a payload against the served schema and checks that the caller may run it;
 * the errors refuse it as a whole (graphql-ws `error` message, SSE HTTP status).
 */
export function prepareOperation(
  gateway: Gateway,
  payload: OperationPayload,
  principal: Principal,
): PreparedOperation | readonly GraphQLError[] {
  if (typeof payload.query !== 'string') {
    return [new GraphQLError('expected a query string', { extensions: { code: 'BAD_REQUEST' } })];
  }
  const document = prepareDocument(gateway.supergraph.schema, payload.query);
  if (Array.isArray(document)) return document as readonly GraphQLError[];
  const prepared = document as DocumentNode;
  const operation = getOperationAST(prepared, payload.operationName);
  if (!operation) {
    return [new GraphQLError('unable to identify the operation', { extensions: { code: 'BAD_REQUEST' } })];
  }
  // A cost that depends on variables (a `limit: $n`) is only known with them.
  const schema = gateway.supergraph.schema;
  const tooCostly = checkOperationCost(
    schema,
    prepared,
    payload.operationName,
    payload.variables,
    gateway.limits,
  );
  if (tooCostly) return [tooCostly];
  const subscription = operation.operation === OperationTypeNode.SUBSCRIPTION;
  try {
    if (subscription) authorize(principal, 'subscribe');
  } catch (error) {
    return [error as GraphQLError];
  }
  return { document: prepared, subscription };
}

/** A query/mutation result, or a subscription's queue (or the errors that refuse it). */
export async function runOperation(
  gateway: Gateway,
  prepared: PreparedOperation & Omit<OperationPayload, 'query'>,
  options: OperationOptions,
): Promise<ExecutionResult | Outbox> {
  const supergraph = gateway.supergraph;
  const variables = prepared.variables ?? {};
  if (!prepared.subscription) {
    return executeOperation({
      supergraph,
      document: prepared.document,
      operationName: prepared.operationName,
      variables,
      caller: options.caller,
      fetch: gateway.fetch,
    });
  }
  return gateway.engine.subscribe({
    supergraph,
    document: prepared.document,
    operationName: prepared.operationName,
    variables,
    principal: options.principal,
    caller: options.caller,
    transport: options.transport,
    resumeAfter: options.resumeAfter,
    onOverflow: options.onOverflow,
  });
}
