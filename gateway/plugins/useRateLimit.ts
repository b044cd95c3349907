// Rate limiting of operations (gateway/rateLimit.ts holds the budgets and the counting): what an
// operation costs, the 429 that refuses it, and the yoga plugin that charges every HTTP operation.
// graphql-ws and SSE charge through checkRateLimit too (gateway/transports/operations.ts).
import {
  getOperationAST,
  GraphQLError,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionArgs,
  type FieldNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ErrorCode } from '../../lib/errors.ts';
import type {
  Charge,
  RateLimitDecision,
  RateLimitedCaller,
  RateLimiter,
  RateLimitKind,
} from '../rateLimit.ts';
import { verifiedPrincipalOf, type GatewayContext } from './useAuth.ts';

/** Text that may hold a mutation or subscription: only text without these words is surely a query. */
const MAY_NOT_BE_A_QUERY = /\b(mutation|subscription)\b/;

/** The mutation whose cost is its events rather than one mutation. */
const INGEST_FIELD = 'ingestEvents';

/** The root fields of an operation, through its fragments (each fragment once). */
function rootFields(
  selectionSet: SelectionSetNode,
  document: DocumentNode,
  seen = new Set<string>(),
): FieldNode[] {
  return selectionSet.selections.flatMap((selection) => {
    if (selection.kind === Kind.FIELD) return [selection];
    if (selection.kind === Kind.INLINE_FRAGMENT) return rootFields(selection.selectionSet, document, seen);
    if (seen.has(selection.name.value)) return [];
    seen.add(selection.name.value);
    const fragment = document.definitions.find(
      (definition) =>
        definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === selection.name.value,
    );
    return fragment?.kind === Kind.FRAGMENT_DEFINITION
      ? rootFields(fragment.selectionSet, document, seen)
      : [];
  });
}

/** The number of events an `events:` argument holds: an inline list, or a variable's value. */
function eventCount(value: ValueNode | undefined, variables: Readonly<Record<string, unknown>>): number {
  if (!value || value.kind === Kind.NULL) return 0;
  if (value.kind === Kind.LIST) return value.values.length;
  if (value.kind === Kind.VARIABLE) {
    const given = variables[value.name.value];
    if (given === undefined || given === null) return 0;
    return Array.isArray(given) ? given.length : 1;
  }
  // A single value where a list is expected is coerced to a list of one.
  return 1;
}

/**
 * What an operation costs: one query, one mutation or one subscription start; `ingestEvents` costs its
 * events (at least 1: an empty batch still makes a call), and a mutation made only of it costs nothing
 * else.
 */
export function chargeOf(
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | null | undefined,
): Charge {
  const operation = getOperationAST(document, operationName);
  if (!operation) return {};
  if (operation.operation === OperationTypeNode.QUERY) return { query: 1 };
  if (operation.operation === OperationTypeNode.SUBSCRIPTION) return { subscription: 1 };
  const fields = rootFields(operation.selectionSet, document).filter(
    (field) => field.name.value !== '__typename',
  );
  const ingests = fields.filter((field) => field.name.value === INGEST_FIELD);
  if (ingests.length === 0) return { mutation: 1 };
  const events = ingests.reduce(
    (sum, field) =>
      sum +
      eventCount(
        field.arguments?.find((argument) => argument.name.value === 'events')?.value,
        variables ?? {},
      ),
    0,
  );
  return { ingest: Math.max(1, events), ...(ingests.length < fields.length ? { mutation: 1 } : {}) };
}

const UNITS: Record<RateLimitKind, string> = {
  query: 'queries',
  mutation: 'mutations',
  ingest: 'events',
  subscription: 'subscription starts',
};

/**
 * The error refusing a request over its budget: HTTP 429 with Retry-After, and in the body the code
 * RATE_LIMITED with the budget's kind, scope, limit and the seconds to wait.
 */
export function rateLimitedError(decision: RateLimitDecision): GraphQLError {
  const { kind = 'query', scope = 'tenant', limit, cost = 1, retryAfterSeconds, windowSeconds } = decision;
  const budget = `this ${scope}'s budget of ${limit} ${UNITS[kind]} per ${windowSeconds} s`;
  const message =
    cost > limit
      ? `rate limited: this request costs ${cost} ${UNITS[kind]}, more than ${budget}; send less at a time`
      : `rate limited: ${budget} is spent; retry after ${retryAfterSeconds} s`;
  return new GraphQLError(message, {
    extensions: {
      code: 'RATE_LIMITED',
      kind,
      scope,
      limit,
      retryAfter: retryAfterSeconds,
      http: { status: ErrorCode.RATE_LIMITED, headers: { 'retry-after': String(retryAfterSeconds) } },
    },
  });
}

/** Charges an operation to the caller's budgets; the error refusing it when a budget is spent. */
export async function checkRateLimit(
  limiter: RateLimiter,
  caller: RateLimitedCaller,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | null | undefined,
): Promise<GraphQLError | undefined> {
  const decision = await limiter.check(caller, chargeOf(document, operationName, variables));
  if (decision.allowed) return undefined;
  await holdRefusal(limiter, decision);
  return rateLimitedError(decision);
}

/** At most this many refusals are held at once; beyond, a refusal is sent at once. */
const MAX_HELD_REFUSALS = 10_000;
let heldRefusals = 0;

/**
 * Waits before a refusal decided from memory is sent: the caller came back before its Retry-After, and
 * a client that ignores Retry-After (a retry loop, a flood) then sends one request per connection per
 * delay instead of as many as the gateway can refuse, as nginx's limit_req delays excess requests.
 * A held refusal costs a timer; the delay ends no later than the Retry-After.
 */
export async function holdRefusal(limiter: RateLimiter, decision: RateLimitDecision): Promise<void> {
  if (!decision.remembered || limiter.refusalDelayMs <= 0 || heldRefusals >= MAX_HELD_REFUSALS) return;
  heldRefusals++;
  try {
    const ms = Math.min(limiter.refusalDelayMs, decision.retryAfterSeconds * 1000);
    await new Promise((resolve) => setTimeout(resolve, ms));
  } finally {
    heldRefusals--;
  }
}

/**
 * Charges every operation yoga serves (HTTP GET and POST, and so POST /events) to the caller's tenant
 * and token budgets once it is parsed, validated and within the operation limits; a refused one is
 * answered 429 as a whole and reaches no subgraph. Anonymous introspection (dev mode) is not charged.
 */
export function useRateLimit(limiter: RateLimiter): Plugin<GatewayContext> {
  return {
    // A caller already refused is refused again before its document is parsed, when the text can only
    // be a query: a flood of refused queries then costs little more than reading the request.
    async onParams({ request, params, setResult }) {
      const caller = verifiedPrincipalOf(request);
      if (!caller || typeof params.query !== 'string' || MAY_NOT_BE_A_QUERY.test(params.query)) return;
      const decision = limiter.refusedAlready(caller, { query: 1 });
      if (!decision) return;
      await holdRefusal(limiter, decision);
      setResult({ errors: [rateLimitedError(decision)] });
    },
    async onExecute({ args, setResultAndStopExecution }) {
      const { contextValue, document, operationName, variableValues } = args as ExecutionArgs & {
        contextValue: GatewayContext;
      };
      if (!contextValue.principal) return;
      const refusal = await checkRateLimit(
        limiter,
        contextValue.principal,
        document,
        operationName,
        variableValues,
      );
      if (refusal) setResultAndStopExecution({ errors: [refusal] });
    },
  };
}
