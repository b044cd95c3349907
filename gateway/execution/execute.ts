// Executes a client operation against the loaded supergraph: plan, run the plan, shape the response
// (aliases, fragments, @skip/@include, null propagation and introspection, as the client asked).
import {
  executeSync,
  getOperationAST,
  GraphQLError,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { executePlan, type ResultMap } from './planExecutor.ts';
import type { Caller, SubgraphFetch } from './subgraphFetcher.ts';
import type { BodyBuffers } from './responseBuffers.ts';
import { DATA_HEAD, operationShape, writeShaped } from './responseShape.ts';
import type { LoadedSupergraph } from './supergraph.ts';

/** One operation of a client, validated against the API schema. */
export interface OperationRequest {
  supergraph: LoadedSupergraph;
  document: DocumentNode;
  operationName?: string | null;
  variables: Record<string, unknown>;
  caller: Caller;
  fetch: SubgraphFetch;
  /** Memory for the response's bytes (an HTTP answer's: reused once sent); fresh Buffers otherwise. */
  body?: BodyBuffers;
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
  return shapeResponse(supergraph.schema, document, operationName, variables, data, errors, request.body);
}

/**
 * An execution result whose data is UTF-8 JSON already (written by responseShape.ts): yoga sends what
 * `stringify` returns as the body (a Buffer goes to the socket as it is; yoga's batches join it as text),
 * and whoever reads `data` gets it parsed (once).
 */
export interface ShapedResult extends ExecutionResult {
  /** The result as UTF-8 JSON, errors first, as graphql-js orders them. */
  stringify(result?: ExecutionResult): Buffer;
}

/** Shapes the merged subgraph data into the response the client's operation asked for. */
export function shapeResponse(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown>,
  input: ResultMap,
  errors: GraphQLError[],
  body?: BodyBuffers,
): ExecutionResult {
  const definition = getOperationAST(document, operationName);
  if (!definition) return { errors: [new GraphQLError('no such operation in the document')] };
  const shapingErrors: GraphQLError[] = [];
  let bytes: Buffer | null;
  try {
    const shape = operationShape(schema, document, definition, variables);
    bytes = writeShaped(
      shape,
      input,
      shapingErrors,
      (field) => introspect(schema, document, definition, field, variables),
      body?.allocate,
    );
  } catch (error) {
    return { errors: [...errors, asGraphQLError(error)] };
  }
  // As @apollo/gateway: the errors of the fetches, or else those of the shaping (a null in a non-null
  // position, a value not of its type).
  return shapedResult(bytes, errors.length ? errors : shapingErrors, body);
}

const NULL_DATA = Buffer.from('null');
/** What a result's bytes become once the buffer they were in is taken back. */
const RECLAIMED = Buffer.alloc(0);

/**
 * `bytes`: `{"data":<data>}` as responseShape.ts wrote it, or null when the data is null. Once `body` takes
 * its buffers back (the answer was sent), the result's bytes are gone: its data can be read only if it was
 * read before, and it cannot be written again.
 */
function shapedResult(bytes: Buffer | null, errors: GraphQLError[], body?: BodyBuffers): ShapedResult {
  body?.onReclaim(() => {
    bytes = RECLAIMED;
  });
  const data = () => {
    if (bytes === RECLAIMED) throw new Error('the result was sent and its bytes reused: read it before');
    return bytes ? bytes.subarray(DATA_HEAD.length, bytes.length - 1) : NULL_DATA;
  };
  let parsed: Record<string, unknown> | null | undefined;
  const result = {
    ...(errors.length ? { errors } : {}),
    stringify(given: ExecutionResult = result): Buffer {
      if (bytes && bytes !== RECLAIMED && !given.errors?.length && !given.extensions) return bytes;
      const head = given.errors?.length ? `{"errors":${JSON.stringify(given.errors)},"data":` : DATA_HEAD;
      const extensions = given.extensions ? `,"extensions":${JSON.stringify(given.extensions)}` : '';
      return Buffer.concat([Buffer.from(head), data(), Buffer.from(`${extensions}}`)]);
    },
  } as ShapedResult;
  Object.defineProperty(result, 'data', {
    enumerable: true,
    get: () => (parsed ??= bytes ? (JSON.parse(data().toString('utf8')) as Record<string, unknown>) : null),
  });
  return result;
}

/** The result as JSON text: its own bytes decoded when it is shaped already, JSON.stringify otherwise. */
export function serializeResult(result: ExecutionResult): string {
  return 'stringify' in result && typeof result.stringify === 'function'
    ? (result as ShapedResult).stringify().toString('utf8')
    : JSON.stringify(result);
}

function introspect(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  field: FieldNode,
  variables: Record<string, unknown>,
): unknown {
  const result = executeSync({
    schema,
    document: {
      kind: Kind.DOCUMENT,
      definitions: [
        {
          kind: Kind.OPERATION_DEFINITION,
          operation: OperationTypeNode.QUERY,
          variableDefinitions: operation.variableDefinitions,
          selectionSet: { kind: Kind.SELECTION_SET, selections: [field] },
        },
        ...document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION),
      ],
    },
    rootValue: {},
    variableValues: variables,
  });
  return result.data?.[field.alias?.value ?? field.name.value];
}

function asGraphQLError(error: unknown): GraphQLError {
  return error instanceof GraphQLError ? error : new GraphQLError((error as Error).message ?? String(error));
}
