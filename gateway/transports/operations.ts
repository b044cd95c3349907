// What the WebSocket and SSE transports share: a client's operation turned into a result or a queue
// of results, through the gateway's executor and subscription engine.
import {
  getOperationAST,
  GraphQLError,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionResult,
} from 'graphql';
import type { Principal } from '../../lib/auth.ts';
import { prepareDocument } from '../execution/documents.ts';
import { deniedFields } from '../plugins/useFieldAuthorization.ts';
import { checkOperationCost } from '../plugins/useOperationLimits.ts';
import { checkRateLimit } from '../plugins/useRateLimit.ts';
import { executeOperation } from '../execution/execute.ts';
import type { Caller } from '../execution/subgraphFetcher.ts';
import type { Gateway } from '../gateway.ts';
import type { Outbox } from '../subscriptions/outbox.ts';

/** A GraphQL request as transports receive it. */
export interface OperationPayload {
  /** The document's text; "" or absent when a persisted one is named below. */
  query: string;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
  /** `persistedQuery: { version: 1, sha256Hash }` names an APQ or manifest document. */
  extensions?: Record<string, unknown> | null;
  /** A manifest document's id (GraphQL-over-HTTP persisted documents), `sha256:` prefix optional. */
  documentId?: string | null;
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
 * Resolves a payload's document (its text, or a persisted one by documentId or APQ hash), parses and
 * validates it against the served schema and checks that the caller may run it; the errors refuse it
 * as a whole (graphql-ws `error` message, SSE HTTP status).
 */
export async function prepareOperation(
  gateway: Gateway,
  payload: OperationPayload,
  principal: Principal,
): Promise<PreparedOperation | readonly GraphQLError[]> {
  const resolved = await gateway.persistedOperations.resolve(payload);
  if (resolved instanceof GraphQLError) return [resolved];
  if (typeof resolved.query !== 'string') {
    return [new GraphQLError('expected a query string', { extensions: { code: 'BAD_REQUEST' } })];
  }
  const prepared = prepareResolved(gateway, { ...payload, query: resolved.query }, principal);
  // An APQ registration is stored once its document passed every check.
  if (!Array.isArray(prepared)) await resolved.register?.();
  return prepared;
}

function prepareResolved(
  gateway: Gateway,
  payload: OperationPayload,
  principal: Principal,
): PreparedOperation | readonly GraphQLError[] {
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
  // The @requiresScopes of every selected field, as over HTTP (useFieldAuthorization.ts).
  const denied = deniedFields(gateway.supergraph, prepared, payload.operationName, principal);
  if (denied.length) return denied;
  return { document: prepared, subscription: operation.operation === OperationTypeNode.SUBSCRIPTION };
}

/**
 * Charges a prepared operation to the caller's rate-limit budgets (a subscription: one start), before
 * anything is sent; the RATE_LIMITED error refusing it (graphql-ws `error` message, SSE 429) if over.
 */
export async function admitOperation(
  gateway: Gateway,
  prepared: PreparedOperation,
  payload: Omit<OperationPayload, 'query'>,
  principal: Principal,
): Promise<GraphQLError | undefined> {
  if (!gateway.rateLimiter) return undefined;
  const { document } = prepared;
  return checkRateLimit(gateway.rateLimiter, principal, document, payload.operationName, payload.variables);
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
