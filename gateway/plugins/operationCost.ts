// The static cost of an operation, in the spirit of the @cost and @listSize directives: every field of
// an object type may cost a fetch, and a list multiplies the cost of what is selected in each item by
// its size: the value of a slicing argument such as `limit`, else the argument's default, else an
// assumed size. Computed from the document alone, before any plan or subgraph call.
import {
  getNamedType,
  getNullableType,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  type ArgumentNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/** Weights of the cost model. */
export interface CostWeights {
  /** Cost of a field of object, interface or union type: each may need a fetch. */
  objectCost: number;
  /** Cost of a scalar or enum field. */
  scalarCost: number;
  /** Size assumed for a list when no slicing argument and no default tell it. */
  assumedListSize: number;
  /** Arguments whose integer value is the size of the list a field returns. */
  slicingArguments: readonly string[];
  /** Whether `__schema` and `__type` count (the gateway answers them itself). */
  countIntrospection: boolean;
}

/** The default weights: objects 1, scalars 0, lists of 10 unless `limit`, `first` or `last` say otherwise. */
export const defaultCostWeights: CostWeights = {
  objectCost: 1,
  scalarCost: 0,
  assumedListSize: 10,
  slicingArguments: ['limit', 'first', 'last'],
  countIntrospection: false,
};

/** What the cost of one operation is computed from. */
export interface CostInput {
  schema: GraphQLSchema;
  operation: OperationDefinitionNode;
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  /** The request's variables; without them a slicing argument given by a variable has its default size. */
  variables?: Readonly<Record<string, unknown>>;
}

/**
 * The estimated cost of an operation. Linear in the size of the document: each fragment is costed once
 * (a fragment's cost does not depend on where it is spread), and a fragment cycle costs nothing more
 * (validation refuses cycles).
 */
export function estimateCost(input: CostInput, weights: CostWeights = defaultCostWeights): number {
  const fragmentCosts = new Map<string, number>();
  const visiting = new Set<string>();
  const selectionSetCost = (selectionSet: SelectionSetNode, parentType: GraphQLNamedType | undefined) => {
    let cost = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        if (!weights.countIntrospection && (name === '__schema' || name === '__type')) continue;
        const field =
          isObjectType(parentType) || isInterfaceType(parentType) ? parentType.getFields()[name] : undefined;
        // __typename and unknown fields (which validation refuses) cost nothing.
        if (!field) continue;
        const type = getNamedType(field.type);
        const own = isCompositeType(type) ? weights.objectCost : weights.scalarCost;
        const children = selection.selectionSet ? selectionSetCost(selection.selectionSet, type) : 0;
        cost += listSize(field, selection.arguments ?? []) * (own + children);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition
          ? input.schema.getType(selection.typeCondition.name.value)
          : parentType;
        cost += selectionSetCost(selection.selectionSet, type ?? undefined);
      } else {
        cost += fragmentCost(selection.name.value);
      }
    }
    return cost;
  };
  const fragmentCost = (name: string): number => {
    const known = fragmentCosts.get(name);
    if (known !== undefined) return known;
    const fragment = input.fragments.get(name);
    if (!fragment || visiting.has(name)) return 0;
    visiting.add(name);
    const cost = selectionSetCost(
      fragment.selectionSet,
      input.schema.getType(fragment.typeCondition.name.value) ?? undefined,
    );
    visiting.delete(name);
    fragmentCosts.set(name, cost);
    return cost;
  };
  const listSize = (field: GraphQLField<unknown, unknown>, args: readonly ArgumentNode[]): number => {
    if (!isListType(getNullableType(field.type))) return 1;
    let size: number | undefined;
    for (const name of weights.slicingArguments) {
      const given = sizeOf(args.find((arg) => arg.name.value === name));
      const value = given ?? field.args.find((arg) => arg.name === name)?.defaultValue;
      if (typeof value === 'number') size = Math.max(size ?? 0, value);
    }
    return size ?? weights.assumedListSize;
  };
  const sizeOf = (arg: ArgumentNode | undefined): number | undefined => {
    if (arg?.value.kind === Kind.INT) return Number(arg.value.value);
    if (arg?.value.kind !== Kind.VARIABLE) return undefined;
    const name = arg.value.name.value;
    const value = input.variables?.[name];
    if (typeof value === 'number') return value;
    const fallback = input.operation.variableDefinitions?.find((v) => v.variable.name.value === name);
    return fallback?.defaultValue?.kind === Kind.INT ? Number(fallback.defaultValue.value) : undefined;
  };
  const root = input.schema.getRootType(input.operation.operation) ?? undefined;
  return selectionSetCost(input.operation.selectionSet, root);
}
