// Shapes the merged subgraph data into the client's response and writes it as JSON text in one pass:
// aliases, fragments by runtime type, @skip/@include, __typename, leaf checks and null propagation, as
// graphql-js and @apollo/gateway's computeResponse do, without building the shaped tree first. The
// fields each runtime type selects are collected once per operation (and values of the condition
// variables) and reused by every response.
import {
  GraphQLError,
  isAbstractType,
  isEnumType,
  isListType,
  isNonNullType,
  isObjectType,
  isUnionType,
  Kind,
  valueFromASTUntyped,
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLLeafType,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { JsonWriter } from './jsonWriter.ts';

/** Answers a root introspection field (__schema, __type) of the operation. */
export type IntrospectionHandler = (field: FieldNode) => unknown;

/** One field of a selection for one runtime type. */
interface FieldShape {
  /** `"responseName":` */
  prefix: string;
  responseName: string;
  kind: 'typename' | 'introspection' | 'value';
  node: FieldNode;
  type: GraphQLOutputType;
  /** The selections of a composite field (merged over every node with this response name). */
  selection?: SelectionShape;
  /** `Parent.field`, for errors. */
  coordinate: string;
}

/** The selections of one composite position, collected lazily per runtime type. */
interface SelectionShape {
  sets: readonly SelectionSetNode[];
  byType: Map<string, FieldShape[]>;
  compiler: ShapeCompiler;
}

/** The compiled shape of an operation: its root selection, for given values of the condition variables. */
export interface OperationShape {
  root: SelectionShape;
  rootType: GraphQLCompositeType;
}

/** Where shaping writes and what it found wrong. */
interface ShapeRun {
  out: JsonWriter;
  errors: GraphQLError[];
  path: Array<string | number>;
  introspect: IntrospectionHandler;
}

/** What writing a value did: wrote a value, wrote null, or must make its nullable parent null (BUBBLE). */
const VALUE = 0;
const NULL = 1;
const BUBBLE = 2;
type Outcome = typeof VALUE | typeof NULL | typeof BUBBLE;

/** Every response is written here, then taken out as a Buffer of its own size. */
const writer = new JsonWriter();
/** What a shaped response starts with; the data follows, then `}`. */
export const DATA_HEAD = '{"data":';

const shapes = new WeakMap<GraphQLSchema, WeakMap<OperationDefinitionNode, Map<string, OperationShape>>>();

/** The shape of `operation` in `document` for these variables (cached per schema, operation and conditions). */
export function operationShape(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>>,
): OperationShape {
  let byOperation = shapes.get(schema);
  if (!byOperation) shapes.set(schema, (byOperation = new WeakMap()));
  let byConditions = byOperation.get(operation);
  if (!byConditions) byOperation.set(operation, (byConditions = new Map<string, OperationShape>()));
  let names = conditionVariables.get(operation);
  if (!names) conditionVariables.set(operation, (names = conditionVariablesOf(document, operation)));
  const key = names.map((name) => `${name}=${String(variableValue(operation, variables, name))}`).join('&');
  let shape = byConditions.get(key);
  if (!shape) {
    const rootType = schema.getRootType(operation.operation);
    if (!rootType) throw new Error(`the schema has no ${operation.operation} type`);
    const compiler = new ShapeCompiler(schema, document, operation, variables);
    shape = { root: compiler.selection([operation.selectionSet]), rootType };
    byConditions.set(key, shape);
  }
  return shape;
}

const conditionVariables = new WeakMap<OperationDefinitionNode, string[]>();

/** The variables that a @skip or @include of the operation (or of the document's fragments) reads. */
function conditionVariablesOf(document: DocumentNode, operation: OperationDefinitionNode): string[] {
  const names = new Set<string>();
  const visit = (set: SelectionSetNode) => {
    for (const node of set.selections) {
      for (const directive of node.directives ?? []) {
        const argument = directive.arguments?.find((a) => a.name.value === 'if');
        if (argument?.value.kind === Kind.VARIABLE) names.add(argument.value.name.value);
      }
      if (node.kind !== Kind.FRAGMENT_SPREAD && node.selectionSet) visit(node.selectionSet);
    }
  };
  visit(operation.selectionSet);
  for (const definition of document.definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) visit(definition.selectionSet);
  return [...names].sort();
}

/** A variable's value, or its definition's default. */
function variableValue(
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>>,
  name: string,
): unknown {
  if (variables[name] !== undefined) return variables[name];
  const definition = operation.variableDefinitions?.find((d) => d.variable.name.value === name);
  return definition?.defaultValue ? valueFromASTUntyped(definition.defaultValue) : undefined;
}

/**
 * Writes `{"data":<data shaped by shape>}` as UTF-8 JSON, into a Buffer from `allocate`; null when null
 * propagated to the root. Errors of the shaping (a null in a non-null position, a value that is not of its
 * type) are pushed to `errors`.
 */
export function writeShaped(
  shape: OperationShape,
  data: Record<string, unknown>,
  errors: GraphQLError[],
  introspect: IntrospectionHandler,
  allocate?: (size: number) => Buffer,
): Buffer | null {
  const out = writer;
  out.reset();
  out.raw(DATA_HEAD);
  const run: ShapeRun = { out, errors, path: [], introspect };
  if (writeObject(run, shape.root, shape.rootType, data, shape.rootType) === BUBBLE) {
    out.reset();
    return null;
  }
  out.byte(125); // }
  return out.take(allocate);
}

function writeObject(
  run: ShapeRun,
  selection: SelectionShape,
  declared: GraphQLCompositeType,
  value: Record<string, unknown>,
  parentForErrors: GraphQLNamedType,
): Outcome {
  const { out } = run;
  const schema = selection.compiler.schema;
  const typename = value['__typename'];
  let runtime: GraphQLNamedType = declared;
  if (typeof typename === 'string' && typename) {
    const named = schema.getType(typename);
    if (!named || !(isObjectType(named) || isAbstractType(named))) {
      run.errors.push(
        new GraphQLError(
          `Invalid __typename found for object at ${describeLast(run.path, declared, parentForErrors)}.`,
          {
            path: [...run.path],
          },
        ),
      );
      out.raw('null');
      return NULL;
    }
    runtime = named;
  }
  const fields = fieldsFor(selection, runtime as GraphQLCompositeType);
  out.byte(123); // {
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (i > 0) out.byte(44); // ,
    out.raw(field.prefix);
    if (field.kind === 'typename') {
      if (!isObjectType(runtime)) return BUBBLE;
      out.string(runtime.name);
    } else if (field.kind === 'introspection') {
      out.json(run.introspect(field.node) ?? null);
    } else {
      const input = Object.hasOwn(value, field.responseName) ? value[field.responseName] : null;
      run.path.push(field.responseName);
      const outcome = writeValue(run, field, field.type, input ?? null, runtime);
      run.path.pop();
      if (outcome === BUBBLE) return BUBBLE;
    }
  }
  out.byte(125); // }
  return VALUE;
}

function writeValue(
  run: ShapeRun,
  field: FieldShape,
  type: GraphQLOutputType,
  input: unknown,
  parent: GraphQLNamedType,
): Outcome {
  const { out } = run;
  if (isNonNullType(type)) {
    const errorsBefore = run.errors.length;
    const outcome = writeValue(run, field, type.ofType, input, parent);
    if (outcome === VALUE) return VALUE;
    if (outcome === NULL && run.errors.length === errorsBefore)
      run.errors.push(
        new GraphQLError(
          `Cannot return null for non-nullable ${describeLast(run.path, type.ofType, parent)}.`,
          {
            path: [...run.path],
          },
        ),
      );
    return BUBBLE;
  }
  if (input === null || input === undefined) {
    out.raw('null');
    return NULL;
  }
  const start = out.at;
  if (isListType(type)) {
    if (!Array.isArray(input)) return invalid(run, type, parent);
    out.byte(91); // [
    for (let i = 0; i < input.length; i++) {
      if (i > 0) out.byte(44); // ,
      run.path.push(i);
      const outcome = writeValue(run, field, type.ofType, (input[i] as unknown) ?? null, parent);
      run.path.pop();
      if (outcome === BUBBLE) return rewindToNull(out, start);
    }
    out.byte(93); // ]
    return VALUE;
  }
  if (field.selection) {
    if (typeof input !== 'object' || Array.isArray(input)) return invalid(run, type, parent);
    const outcome = writeObject(
      run,
      field.selection,
      type as GraphQLCompositeType,
      input as Record<string, unknown>,
      parent,
    );
    return outcome === BUBBLE ? rewindToNull(out, start) : outcome;
  }
  return writeLeaf(run, type as GraphQLLeafType, input, parent);
}

/** Drops what was written from `start` on and writes null there instead. */
function rewindToNull(out: JsonWriter, start: number): Outcome {
  out.at = start;
  out.raw('null');
  return NULL;
}

function writeLeaf(run: ShapeRun, type: GraphQLLeafType, input: unknown, parent: GraphQLNamedType): Outcome {
  const { out } = run;
  switch (type.name) {
    case 'String':
      if (typeof input !== 'string') return invalid(run, type, parent);
      out.string(input);
      return VALUE;
    case 'Int':
      if (!Number.isInteger(input)) return invalid(run, type, parent);
      out.raw(String(input));
      return VALUE;
    case 'Float':
      if (typeof input !== 'number' || !Number.isFinite(input)) return invalid(run, type, parent);
      out.raw(String(input));
      return VALUE;
    case 'Boolean':
      if (input !== true && input !== false) return invalid(run, type, parent);
      out.raw(input ? 'true' : 'false');
      return VALUE;
    case 'ID':
      if (typeof input === 'string') out.string(input);
      else if (Number.isInteger(input)) out.raw(String(input));
      else return invalid(run, type, parent);
      return VALUE;
  }
  if (isEnumType(type)) {
    if (typeof input !== 'string' || !type.getValue(input)) return invalid(run, type, parent);
    out.string(input);
    return VALUE;
  }
  out.json(input);
  return VALUE;
}

function invalid(run: ShapeRun, type: GraphQLOutputType, parent: GraphQLNamedType): Outcome {
  run.errors.push(
    new GraphQLError(`Invalid value found for ${describeLast(run.path, type, parent)}.`, {
      path: [...run.path],
    }),
  );
  run.out.raw('null');
  return NULL;
}

function describeLast(
  path: ReadonlyArray<string | number>,
  type: GraphQLOutputType,
  parent: GraphQLNamedType,
) {
  const last = path[path.length - 1];
  return typeof last === 'string'
    ? `field ${parent.name}.${last}`
    : `array element of type ${String(type)} at index ${last}`;
}

function fieldsFor(selection: SelectionShape, runtime: GraphQLCompositeType): FieldShape[] {
  let fields = selection.byType.get(runtime.name);
  if (!fields) {
    fields = selection.compiler.collect(selection.sets, runtime);
    selection.byType.set(runtime.name, fields);
  }
  return fields;
}

/** Collects fields per runtime type, as graphql-js's collectFields, with the conditions decided. */
class ShapeCompiler {
  readonly schema: GraphQLSchema;
  private readonly operation: OperationDefinitionNode;
  private readonly variables: Readonly<Record<string, unknown>>;
  private readonly fragments = new Map<string, FragmentDefinitionNode>();

  constructor(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Readonly<Record<string, unknown>>,
  ) {
    this.schema = schema;
    this.operation = operation;
    this.variables = variables;
    for (const definition of document.definitions)
      if (definition.kind === Kind.FRAGMENT_DEFINITION) this.fragments.set(definition.name.value, definition);
  }

  selection(sets: readonly SelectionSetNode[]): SelectionShape {
    return { sets, byType: new Map(), compiler: this };
  }

  collect(sets: readonly SelectionSetNode[], runtime: GraphQLCompositeType): FieldShape[] {
    const grouped = new Map<string, FieldNode[]>();
    const visited = new Set<string>();
    for (const set of sets) this.collectInto(set, runtime, grouped, visited);
    const fields: FieldShape[] = [];
    for (const [responseName, nodes] of grouped) {
      const node = nodes[0]!;
      const name = node.name.value;
      const prefix = `${JSON.stringify(responseName)}:`;
      const coordinate = `${runtime.name}.${name}`;
      if (name === '__typename') {
        fields.push({ prefix, responseName, kind: 'typename', node, type: runtime, coordinate });
        continue;
      }
      if (name === '__schema' || name === '__type') {
        fields.push({ prefix, responseName, kind: 'introspection', node, type: runtime, coordinate });
        continue;
      }
      const definition = fieldOf(runtime, name);
      if (!definition) continue; // not of this runtime type (validated against the declared type)
      const subSets = nodes.flatMap((n) => (n.selectionSet ? [n.selectionSet] : []));
      fields.push({
        prefix,
        responseName,
        kind: 'value',
        node,
        type: definition.type,
        coordinate,
        ...(subSets.length ? { selection: this.selection(subSets) } : {}),
      });
    }
    return fields;
  }

  private collectInto(
    set: SelectionSetNode,
    runtime: GraphQLCompositeType,
    grouped: Map<string, FieldNode[]>,
    visited: Set<string>,
  ): void {
    for (const node of set.selections) {
      if (!this.included(node)) continue;
      if (node.kind === Kind.FIELD) {
        const responseName = node.alias?.value ?? node.name.value;
        const nodes = grouped.get(responseName);
        if (nodes) nodes.push(node);
        else grouped.set(responseName, [node]);
      } else if (node.kind === Kind.INLINE_FRAGMENT) {
        if (!node.typeCondition || this.applies(node.typeCondition.name.value, runtime))
          this.collectInto(node.selectionSet, runtime, grouped, visited);
      } else {
        const name = node.name.value;
        if (visited.has(name)) continue;
        visited.add(name);
        const fragment = this.fragments.get(name);
        if (fragment && this.applies(fragment.typeCondition.name.value, runtime))
          this.collectInto(fragment.selectionSet, runtime, grouped, visited);
      }
    }
  }

  /** Whether a fragment on `condition` applies to an object of `runtime` (or of an abstract type). */
  private applies(condition: string, runtime: GraphQLCompositeType): boolean {
    if (condition === runtime.name) return true;
    const type = this.schema.getType(condition);
    if (!type || !isAbstractType(type) || isUnionType(runtime)) return false;
    return this.schema.isSubType(type, runtime);
  }

  private included(node: { directives?: readonly DirectiveNode[] }): boolean {
    for (const directive of node.directives ?? []) {
      const name = directive.name.value;
      if (name !== 'skip' && name !== 'include') continue;
      const argument = directive.arguments?.find((a) => a.name.value === 'if');
      if (!argument) continue;
      const value =
        argument.value.kind === Kind.VARIABLE
          ? variableValue(this.operation, this.variables, argument.value.name.value)
          : argument.value.kind === Kind.BOOLEAN && argument.value.value;
      if (name === 'skip' && value === true) return false;
      if (name === 'include' && value !== true) return false;
    }
    return true;
  }
}

function fieldOf(type: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined {
  return 'getFields' in type ? type.getFields()[name] : undefined;
}
