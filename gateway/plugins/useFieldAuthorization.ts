// Field authorization at the gateway: every field an operation selects, through its fragments, is held to
// the @requiresScopes of the field and of the type it returns in the supergraph, before any plan is made or
// subgraph called. The subgraphs check the same directives again (lib/subgraphServer.ts, reports/server.ts).
import {
  getNamedType,
  getOperationAST,
  GraphQLError,
  isAbstractType,
  isInterfaceType,
  isObjectType,
  Kind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type ASTNode,
  type DocumentNode,
  type ExecutionArgs,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import {
  effectiveScopes,
  forbiddenMessage,
  requiredScopesOf,
  unmetRequirement,
  type Principal,
  type ScopeRequirement,
} from '../../lib/auth.ts';
import { ErrorCode } from '../../lib/errors.ts';
import type { LoadedSupergraph } from '../execution/supergraph.ts';
import type { GatewayContext } from './useAuth.ts';

/** The @requiresScopes of one supergraph: by type name, and by field coordinate (`Type.field`). */
export interface ScopeRequirements {
  types: ReadonlyMap<string, ScopeRequirement>;
  fields: ReadonlyMap<string, ScopeRequirement>;
}

const SPEC = 'https://specs.apollo.dev/requiresScopes/';

/** The name the supergraph gives @requiresScopes: its @link's `as`, else the spec's own. */
function directiveNameOf(supergraphSchema: GraphQLSchema): string {
  for (const link of supergraphSchema.astNode?.directives ?? []) {
    if (link.name.value !== 'link') continue;
    const args = new Map(link.arguments?.map((a) => [a.name.value, a.value]));
    const url = args.get('url');
    const as = args.get('as');
    if (url?.kind === Kind.STRING && url.value.startsWith(SPEC))
      return as?.kind === Kind.STRING ? as.value : 'requiresScopes';
  }
  return 'requiresScopes';
}

// Read once per loaded supergraph: a reload brings a new LoadedSupergraph, and with it new requirements.
const requirementsOfSupergraph = new WeakMap<LoadedSupergraph, ScopeRequirements>();

/** The requirements a supergraph declares, read from the directive applications on its types and fields. */
export function scopeRequirementsOf(supergraph: LoadedSupergraph): ScopeRequirements {
  let found = requirementsOfSupergraph.get(supergraph);
  if (found) return found;
  const schema = supergraph.supergraphSchema;
  const names = [directiveNameOf(schema)];
  const types = new Map<string, ScopeRequirement>();
  const fields = new Map<string, ScopeRequirement>();
  for (const type of Object.values(schema.getTypeMap())) {
    const own = requiredScopesOf(type.astNode?.directives, names);
    if (own) types.set(type.name, own);
    if (!isObjectType(type) && !isInterfaceType(type)) continue;
    for (const field of Object.values(type.getFields())) {
      const required = requiredScopesOf(field.astNode?.directives, names);
      if (required) fields.set(`${type.name}.${field.name}`, required);
    }
  }
  found = { types, fields };
  requirementsOfSupergraph.set(supergraph, found);
  return found;
}

/**
 * What selecting `parent.field` requires, all of it: the field's own @requiresScopes and its type's (the
 * type it returns, lists and non-null aside); for an interface or union, those of each possible type too.
 */
function requirementsOfField(
  schema: GraphQLSchema,
  requirements: ScopeRequirements,
  parent: GraphQLCompositeType,
  field: GraphQLField<unknown, unknown>,
): ScopeRequirement[] {
  const possible = (type: GraphQLNamedType) =>
    isAbstractType(type) ? [type, ...schema.getPossibleTypes(type)] : [type];
  const returned = getNamedType(field.type);
  return [
    ...possible(parent).map((owner) => requirements.fields.get(`${owner.name}.${field.name}`)),
    ...possible(returned).map((type) => requirements.types.get(type.name)),
  ].filter((r): r is ScopeRequirement => r !== undefined);
}

/** The refusal of one field, answered with HTTP 403 when it refuses an HTTP request. */
function fieldForbidden(principal: Principal, requirement: ScopeRequirement, field: string, node: ASTNode) {
  return new GraphQLError(forbiddenMessage(principal, requirement), {
    nodes: node,
    extensions: { code: 'FORBIDDEN', field, http: { status: ErrorCode.FORBIDDEN } },
  });
}

/**
 * One FORBIDDEN error per field (by coordinate, in document order) that the operation selects, through
 * its fragments, and that the principal's scopes do not cover, fields below a denied one aside; none when
 * it may run. Introspection fields (`__typename`, `__schema`, `__type`) require nothing.
 */
export function deniedFields(
  supergraph: LoadedSupergraph,
  document: DocumentNode,
  operationName: string | null | undefined,
  principal: Principal,
): GraphQLError[] {
  const operation = getOperationAST(document, operationName);
  if (!operation) return [];
  // An operation its caller's scopes allow is remembered per document and set of scopes: the same
  // dashboard query from the same kind of caller is walked once, not per request.
  const allowedKey = `${operationName ?? ''}\n${scopesKeyOf(principal)}`;
  let allowed = allowedOperations.get(supergraph)?.get(document);
  if (allowed?.has(allowedKey)) return [];
  const requirements = scopeRequirementsOf(supergraph);
  const schema = supergraph.schema;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const denied = new Map<string, GraphQLError>();
  const typeInfo = new TypeInfo(schema);
  const pending: ASTNode[] = [operation];
  const spread = new Set<string>();
  const visitor = visitWithTypeInfo(typeInfo, {
    // A denied field's own selection is not looked into: it would never run.
    Field(node) {
      const parent = typeInfo.getParentType();
      const field = typeInfo.getFieldDef();
      if (!parent || !field || field.name.startsWith('__')) return undefined;
      const coordinate = `${parent.name}.${field.name}`;
      if (denied.has(coordinate)) return false;
      const unmet = unmetRequirement(principal, requirementsOfField(schema, requirements, parent, field));
      if (!unmet) return undefined;
      denied.set(coordinate, fieldForbidden(principal, unmet, coordinate, node));
      return false;
    },
    // Each fragment the operation reaches is walked once, from its own type condition.
    FragmentSpread(node) {
      const fragment = fragments.get(node.name.value);
      if (!fragment || spread.has(fragment.name.value)) return;
      spread.add(fragment.name.value);
      pending.push(fragment);
    },
  });
  for (let next = pending.shift(); next; next = pending.shift()) visit(next, visitor);
  if (denied.size === 0) {
    let byDocument = allowedOperations.get(supergraph);
    if (!byDocument) allowedOperations.set(supergraph, (byDocument = new WeakMap()));
    if (!allowed) byDocument.set(document, (allowed = new Set()));
    if (allowed.size < 100) allowed.add(allowedKey);
  }
  return [...denied.values()];
}

const allowedOperations = new WeakMap<LoadedSupergraph, WeakMap<DocumentNode, Set<string>>>();
const scopesKeys = new WeakMap<Principal, string>();

function scopesKeyOf(principal: Principal): string {
  let key = scopesKeys.get(principal);
  if (key === undefined) scopesKeys.set(principal, (key = [...effectiveScopes(principal)].sort().join(' ')));
  return key;
}

/**
 * Refuses, over HTTP, an operation that selects a field its caller's scopes do not cover (403 FORBIDDEN,
 * one error per such field) before the executor plans it. The WebSocket and SSE transports call
 * deniedFields themselves (transports/operations.ts). Anonymous operations are left to useAuth.
 */
export function useFieldAuthorization(currentSupergraph: () => LoadedSupergraph): Plugin<GatewayContext> {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const { document, operationName, contextValue } = args as ExecutionArgs & {
        contextValue: GatewayContext;
      };
      if (!contextValue.principal) return;
      const errors = deniedFields(currentSupergraph(), document, operationName, contextValue.principal);
      if (errors.length) setResultAndStopExecution({ errors });
    },
  };
}
