// The primary part of a subscription plan: which root field of which subgraph, with which arguments,
// and, for stream-bound fields, the primary result built from an event's payload instead of a fetch.
import type { FetchNode } from '@apollo/query-planner';
import {
  execute,
  getOperationAST,
  Kind,
  parse,
  print,
  visit,
  isObjectType,
  getNamedType,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLObjectType,
  type GraphQLSchema,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import { getArgumentValues } from 'graphql/execution/values.js';
import { type ResultMap } from '../execution/planExecutor.ts';
import type { Caller, SubgraphFetch } from '../execution/subgraphFetcher.ts';

/** The primary fetch of a subscription plan, read once per group. */
export interface Primary {
  fetch: FetchNode;
  document: DocumentNode;
  /** The root field's node and the document's fragments, read once for every event of the group. */
  root: FieldNode;
  fragments: Map<string, FragmentDefinitionNode>;
  field: string;
  args: Record<string, unknown>;
  /** The variables the primary operation uses. */
  variables: Record<string, unknown>;
  /** Names of variables that feed the resume argument (they do not change what an event yields). */
  resumeVariables: string[];
}

/**
 * Reads the root field and its coerced arguments from the plan's primary fetch; `resumeArgumentOf`
 * names the field's resume argument, if its binding has one.
 */
export function primaryOf(
  fetch: FetchNode,
  subgraphSchema: GraphQLSchema,
  variables: Record<string, unknown>,
  resumeArgumentOf: (field: string) => string | undefined,
): Primary {
  const document = fetch.operationDocumentNode ?? parse(fetch.operation);
  const operation = getOperationAST(document);
  const root = operation?.selectionSet.selections[0];
  const definition =
    root?.kind === Kind.FIELD
      ? subgraphSchema.getSubscriptionType()?.getFields()[root.name.value]
      : undefined;
  if (!root || root.kind !== Kind.FIELD || !definition)
    throw new Error('the subscription plan has no root field');
  const used: Record<string, unknown> = {};
  for (const name of fetch.variableUsages ?? [])
    if (variables[name] !== undefined) used[name] = variables[name];
  const resumeArgument = resumeArgumentOf(root.name.value);
  const resumeNode = root.arguments?.find((arg) => arg.name.value === resumeArgument)?.value;
  return {
    fetch,
    document,
    root,
    fragments: new Map(
      document.definitions
        .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
        .map((d) => [d.name.value, d]),
    ),
    field: root.name.value,
    args: getArgumentValues(definition, root, used),
    variables: used,
    resumeVariables: resumeNode?.kind === Kind.VARIABLE ? [resumeNode.name.value] : [],
  };
}

interface Gap {
  entity: ResultMap;
  type: GraphQLObjectType;
  selections: FieldNode[];
}

/**
 * The primary result for a stream event: the payload read through the subgraph's own schema, as the
 * subgraph would have answered. Fields the payload lacks on the subgraph's entities (say
 * `kpi { current }` on a KPI event) are fetched from the subgraph with `_entities` first.
 */
export async function primaryFromPayload(
  primary: Primary,
  subgraphSchema: GraphQLSchema,
  value: ResultMap,
  caller: Caller,
  fetch: SubgraphFetch,
): Promise<ExecutionResult> {
  const { root, fragments } = primary;
  const rootType = getNamedType(subgraphSchema.getSubscriptionType()!.getFields()[primary.field]!.type);
  const gaps: Gap[] = [];
  if (root.selectionSet && isObjectType(rootType))
    findGaps(subgraphSchema, rootType, root.selectionSet, value, fragments, gaps, false);
  const errors = [];
  for (const gap of gaps) {
    const result = await fillGap(primary, gap, caller, fetch);
    if (result) errors.push(...result);
  }
  const projected = execute({
    schema: subgraphSchema,
    document: primary.document,
    rootValue: { [primary.field]: value },
    variableValues: primary.variables,
  }) as ExecutionResult;
  return errors.length
    ? { ...projected, errors: [...(projected.errors ?? []), ...errors] as never }
    : projected;
}

function isEntity(schema: GraphQLSchema, type: GraphQLObjectType): boolean {
  const entities = schema.getType('_Entity');
  return !!entities && 'getTypes' in entities && entities.getTypes().includes(type);
}

function findGaps(
  schema: GraphQLSchema,
  type: GraphQLObjectType,
  selectionSet: SelectionSetNode,
  value: unknown,
  fragments: Map<string, FragmentDefinitionNode>,
  gaps: Gap[],
  entityLevel: boolean,
): void {
  if (!value || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const item of value) findGaps(schema, type, selectionSet, item, fragments, gaps, entityLevel);
    return;
  }
  const object = value as ResultMap;
  const missing: FieldNode[] = [];
  const fields = type.getFields();
  const visitSelections = (selections: readonly SelectionNode[]) => {
    for (const selection of selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (fragment) visitSelections(fragment.selectionSet.selections);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition?.name.value;
        if (!condition || condition === type.name) visitSelections(selection.selectionSet.selections);
      } else if (selection.name.value !== '__typename') {
        const definition = fields[selection.name.value];
        if (!definition) continue;
        if (object[selection.name.value] === undefined) {
          missing.push(selection);
          continue;
        }
        const inner = getNamedType(definition.type);
        if (selection.selectionSet && isObjectType(inner)) {
          findGaps(
            schema,
            inner,
            selection.selectionSet,
            object[selection.name.value],
            fragments,
            gaps,
            true,
          );
        }
      }
    }
  };
  visitSelections(selectionSet.selections);
  if (missing.length && entityLevel && isEntity(schema, type))
    gaps.push({ entity: object, type, selections: missing });
}

async function fillGap(primary: Primary, gap: Gap, caller: Caller, fetch: SubgraphFetch) {
  const selection = `... on ${gap.type.name} { ${gap.selections.map((s) => print(s)).join(' ')} }`;
  const used = new Set<string>();
  for (const node of gap.selections) visit(node, { Variable: (v) => void used.add(v.name.value) });
  const definitions = (getOperationAST(primary.document)?.variableDefinitions ?? []).filter((d) =>
    used.has(d.variable.name.value),
  );
  const query = `query(${['$representations: [_Any!]!', ...definitions.map((d) => print(d))].join(', ')}) { _entities(representations: $representations) { ${selection} } }`;
  const representation: ResultMap = { __typename: gap.type.name };
  for (const [key, field] of Object.entries(gap.entity)) {
    if (field === null || typeof field !== 'object') representation[key] = field;
  }
  const variables: Record<string, unknown> = { representations: [representation] };
  for (const name of used) variables[name] = primary.variables[name];
  const response = await fetch(primary.fetch.serviceName, { query, variables }, caller);
  const entity = (response.data?.['_entities'] as ResultMap[] | undefined)?.[0];
  if (entity) Object.assign(gap.entity, entity, { __typename: gap.type.name });
  return response.errors;
}
