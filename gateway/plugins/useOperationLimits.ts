// Operation limits: depth, aliases, root fields, tokens, directives and cost, checked before any plan is
// made or subgraph called. The one place that defines them: the yoga plugin below serves HTTP, and the
// WebSocket and SSE transports parse and validate with the same functions (execution/documents.ts).
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import type { GraphQLArmorRejectCallback } from '@escape.tech/graphql-armor-types';
import {
  getOperationAST,
  GraphQLError,
  Kind,
  Lexer,
  parse,
  Source,
  specifiedRules,
  TokenKind,
  validate,
  type ASTNode,
  type DocumentNode,
  type ExecutionArgs,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ErrorCode, errorCodeOf, type ErrorCodeName } from '../../lib/errors.ts';
import { defaultCostWeights, estimateCost, type CostWeights } from './operationCost.ts';

/** The limits every client operation is held to, whatever its transport. */
export interface OperationLimits {
  /** Deepest field nesting; fragments add no depth of their own. */
  maxDepth: number;
  /** Aliases in one operation, through its fragments (`__typename` aside). */
  maxAliases: number;
  /** Distinct root fields (response keys, so aliases count) of one operation. */
  maxRootFields: number;
  /** Lexical tokens of the whole document. */
  maxTokens: number;
  /** Directives in one operation, through its fragments. */
  maxDirectives: number;
  /** Estimated cost of one operation (operationCost.ts). */
  maxCost: number;
  /** Weights of the cost model. */
  cost: CostWeights;
  /** Whether __schema and __type are served at all (INTROSPECTION; production: not by default). */
  introspection: boolean;
  /** Whether introspection counts toward depth and cost (production: it does). */
  limitIntrospection: boolean;
  /** Whether validation errors keep graphql-js's "Did you mean ...?" (never in production). */
  hideSuggestions: boolean;
}

/** Defaults that every query of the platform's clients and tests stays well within. */
export const defaultOperationLimits: OperationLimits = {
  maxDepth: 12,
  maxAliases: 30,
  maxRootFields: 20,
  maxTokens: 5_000,
  maxDirectives: 50,
  maxCost: 5_000,
  cost: defaultCostWeights,
  introspection: true,
  limitIntrospection: false,
  hideSuggestions: false,
};

/** The limits of a gateway: the defaults, production's stricter ones, then the given settings. */
export function operationLimits(
  settings: Partial<OperationLimits> = {},
  production = false,
): OperationLimits {
  const defined = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
  return {
    ...defaultOperationLimits,
    ...(production ? { limitIntrospection: true, hideSuggestions: true } : {}),
    ...defined,
  };
}

// graphql-js parses brackets recursively and overflows the stack near 2,000 levels, before any limit
// of validation can run; no operation within maxDepth (at most 100) needs more than this.
const MAX_NESTING = 256;

/** An error that refuses the whole operation with HTTP 400, whatever the response's media type. */
function limitError(
  code: ErrorCodeName,
  message: string,
  details: Record<string, unknown> = {},
  nodes?: ASTNode | readonly ASTNode[],
): GraphQLError {
  // spec: false, or yoga answers application/json requests with 200, as the GraphQL-over-HTTP spec asks
  // for validation errors; a limit is the server's refusal, not the client's mistake in the language.
  const http = { status: ErrorCode[code], spec: false };
  return new GraphQLError(message, { nodes, extensions: { code, ...details, http } });
}

/**
 * Checks a client document's token count and bracket nesting in one pass of the lexer, before the
 * recursive parser runs; throws MAX_TOKENS_EXCEEDED, MAX_DEPTH_EXCEEDED, or graphql-js's syntax error.
 */
function checkLexicalLimits(source: string, limits: OperationLimits): void {
  const lexer = new Lexer(new Source(source));
  let tokens = 0;
  let nesting = 0;
  for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
    if (++tokens > limits.maxTokens) {
      throw limitError(
        'MAX_TOKENS_EXCEEDED',
        `the document has more than ${limits.maxTokens} tokens, the maximum`,
        { maxTokens: limits.maxTokens },
      );
    }
    if (OPENING.has(token.kind)) {
      if (++nesting > MAX_NESTING) {
        throw limitError(
          'MAX_DEPTH_EXCEEDED',
          `the document nests brackets more than ${MAX_NESTING} levels deep, the maximum`,
          { maxNesting: MAX_NESTING },
        );
      }
    } else if (CLOSING.has(token.kind)) {
      nesting--;
    }
  }
}

const OPENING = new Set<string>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSING = new Set<string>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

/** Parses a client document under the token and nesting limits (throws a GraphQLError when it breaks one). */
export function parseOperation(source: string, limits: OperationLimits): DocumentNode {
  checkLexicalLimits(source, limits);
  try {
    return parse(source, { maxLexicalTokens: limits.maxTokens, maxComments: limits.maxTokens });
  } catch (error) {
    throw error instanceof RangeError ? tooDeepToCheck() : error;
  }
}

/**
 * The refusal of a document that overflowed the stack in graphql-js's recursive parser or rules
 * (say, a chain of a thousand fragments each spreading the next): a 400, never a 500.
 */
function tooDeepToCheck(): GraphQLError {
  return limitError('MAX_DEPTH_EXCEEDED', 'the document nests too deeply to be checked');
}

/** Reports graphql-armor's rejection as a validation error with our code (armor's own has none). */
function reportAs(code: ErrorCodeName, detail: Record<string, number>): GraphQLArmorRejectCallback {
  return (context, error) =>
    context?.reportError(limitError(code, error.message.replace(/^Syntax Error: /, ''), detail));
}

/**
 * Refuses fragments that spread themselves as too deep: their depth has no bound, and graphql-armor
 * counts a cycle once. graphql-js's NoFragmentCyclesRule reports them too, as a GraphQL error only.
 */
function unboundedFragmentsRule(maxDepth: number): ValidationRule {
  return function UnboundedFragments(context: ValidationContext) {
    return {
      Document(document) {
        const fragments = fragmentsOf(document);
        const state = new Map<string, 'visiting' | 'done'>();
        const cyclic = new Set<string>();
        const visit = (name: string) => {
          if (state.get(name) === 'done') return;
          if (state.get(name) === 'visiting') return void cyclic.add(name);
          state.set(name, 'visiting');
          const fragment = fragments.get(name);
          if (fragment) {
            for (const spread of context.getFragmentSpreads(fragment.selectionSet)) visit(spread.name.value);
          }
          state.set(name, 'done');
        };
        for (const name of fragments.keys()) visit(name);
        for (const name of cyclic) {
          context.reportError(
            limitError(
              'MAX_DEPTH_EXCEEDED',
              `fragment ${name} spreads itself, so its depth has no bound (the maximum is ${maxDepth})`,
              { maxDepth },
              fragments.get(name),
            ),
          );
        }
      },
    };
  };
}

/** Counts the distinct response keys at the root of an operation, through its fragments. */
function maxRootFieldsRule(maxRootFields: number): ValidationRule {
  return function MaxRootFields(context: ValidationContext) {
    const collect = (selectionSet: SelectionSetNode, keys: Set<string>, spread: Set<string>) => {
      for (const selection of selectionSet.selections) {
        if (selection.kind === Kind.FIELD) {
          if (selection.name.value !== '__typename') keys.add(selection.alias?.value ?? selection.name.value);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          collect(selection.selectionSet, keys, spread);
        } else if (!spread.has(selection.name.value)) {
          spread.add(selection.name.value);
          const fragment = context.getFragment(selection.name.value);
          if (fragment) collect(fragment.selectionSet, keys, spread);
        }
      }
      return keys;
    };
    return {
      OperationDefinition(operation) {
        const count = collect(operation.selectionSet, new Set(), new Set()).size;
        if (count <= maxRootFields) return;
        context.reportError(
          limitError(
            'MAX_ROOT_FIELDS_EXCEEDED',
            `the operation selects ${count} root fields, more than the maximum of ${maxRootFields}`,
            { rootFields: count, maxRootFields },
            operation,
          ),
        );
      },
    };
  };
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

/** The error refusing an operation over its cost, if it is. */
function costError(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  limits: OperationLimits,
  variables?: Readonly<Record<string, unknown>>,
): GraphQLError | undefined {
  const cost = estimateCost({ schema, operation, fragments: fragmentsOf(document), variables }, limits.cost);
  if (cost <= limits.maxCost) return undefined;
  return limitError(
    'MAX_COST_EXCEEDED',
    `the operation's estimated cost is ${cost}, more than the maximum of ${limits.maxCost} ` +
      `(a list field costs its selection once per item: ask for fewer items with ${limits.cost.slicingArguments.join(', ')})`,
    { cost, maxCost: limits.maxCost },
    operation,
  );
}

/** Refuses __schema and __type (graphql-js's NoSchemaIntrospectionCustomRule, with the platform's code). */
function noIntrospectionRule(context: ValidationContext) {
  return {
    Field(field: FieldNode) {
      if (field.name.value !== '__schema' && field.name.value !== '__type') return;
      context.reportError(
        limitError(
          'INTROSPECTION_DISABLED',
          `introspection is disabled: ${field.name.value} is not served`,
          {},
          field,
        ),
      );
    },
  };
}

/** Estimates each operation's cost as the document states it (variables count at their default). */
function maxCostRule(limits: OperationLimits): ValidationRule {
  return function MaxCost(context: ValidationContext) {
    return {
      OperationDefinition(operation) {
        const error = costError(context.getSchema(), context.getDocument(), operation, limits);
        if (error) context.reportError(error);
      },
    };
  };
}

/** The validation rules of the limits, beside graphql-js's own; each reports its own code. */
export function operationLimitRules(limits: OperationLimits): ValidationRule[] {
  return [
    maxDepthRule({
      n: limits.maxDepth,
      flattenFragments: true,
      ignoreIntrospection: !limits.limitIntrospection,
      propagateOnRejection: false,
      onReject: [reportAs('MAX_DEPTH_EXCEEDED', { maxDepth: limits.maxDepth })],
    }),
    unboundedFragmentsRule(limits.maxDepth),
    maxAliasesRule({
      n: limits.maxAliases,
      propagateOnRejection: false,
      onReject: [reportAs('MAX_ALIASES_EXCEEDED', { maxAliases: limits.maxAliases })],
    }),
    maxDirectivesRule({
      n: limits.maxDirectives,
      propagateOnRejection: false,
      onReject: [reportAs('MAX_DIRECTIVES_EXCEEDED', { maxDirectives: limits.maxDirectives })],
    }),
    maxRootFieldsRule(limits.maxRootFields),
    maxCostRule(limits),
    ...(limits.introspection ? [] : [noIntrospectionRule]),
  ];
}

/** Validates a document with graphql-js's rules and the limits'; every broken rule is reported. */
export function validateOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  limits: OperationLimits,
  rules: readonly ValidationRule[] = specifiedRules,
): readonly GraphQLError[] {
  try {
    return validate(schema, document, [...rules, ...operationLimitRules(limits)], {
      hideSuggestions: limits.hideSuggestions,
    });
  } catch (error) {
    if (error instanceof RangeError) return [tooDeepToCheck()];
    throw error;
  }
}

/**
 * The cost of the operation to run with the request's variables (a `limit` given by a variable is only
 * known now); the error refusing it, if it costs too much.
 */
export function checkOperationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | null | undefined,
  limits: OperationLimits,
): GraphQLError | undefined {
  const operation = getOperationAST(document, operationName);
  if (!operation || !variables || Object.keys(variables).length === 0) return undefined;
  return costError(schema, document, operation, limits, variables);
}

/** Holds every operation yoga serves (HTTP) to the limits: at parse, validation, and with the variables. */
export function useOperationLimits(limits: OperationLimits): Plugin {
  return {
    // Checked on the request's params rather than in onParse: yoga marks a parse error as the
    // GraphQL-over-HTTP spec's, and so answers 200 to application/json clients.
    onParams({ params, setResult }) {
      if (typeof params.query !== 'string') return;
      try {
        checkLexicalLimits(params.query, limits);
      } catch (error) {
        if (error instanceof GraphQLError && errorCodeOf(error) !== undefined) setResult({ errors: [error] });
      }
    },
    onParse({ setParseFn }) {
      setParseFn((source: string | Source) =>
        parseOperation(typeof source === 'string' ? source : source.body, limits),
      );
    },
    onValidate({ setValidationFn }) {
      setValidationFn((schema: GraphQLSchema, document: DocumentNode, rules?: readonly ValidationRule[]) =>
        validateOperation(schema, document, limits, rules),
      );
    },
    onExecute({ args, setResultAndStopExecution }) {
      const { schema, document, operationName, variableValues } = args as ExecutionArgs;
      const error = checkOperationCost(schema, document, operationName, variableValues, limits);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
