// Executes @apollo/query-planner plans: Fetch, Flatten, Sequence, Parallel and Condition nodes over a
// result tree that starts empty (queries, mutations) or from a subscription event (the plan's rest).
// Subgraph answers are never written to: requests in flight share them (subgraphFetcher.ts), so the tree
// links to their objects and copies one (shallow, once per request) only where a later fetch merges into
// it or below it. Objects the request copied or created carry its mark (`owned`); everything else is
// read-only. A mark is a symbol-keyed property: JSON.stringify, Object.keys and for-in do not see it.
import { applyRewrites, isObjectOfType } from '@apollo/gateway/dist/dataRewrites.js';
import type { Operation } from '@apollo/federation-internals';
import {
  evaluateCondition,
  type FetchNode,
  type PlanNode,
  type QueryPlanSelectionNode,
  type ResponsePath,
} from '@apollo/query-planner';
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import type { Caller, SubgraphFetch } from './subgraphFetcher.ts';

/** A JSON object of the result tree. */
export type ResultMap = Record<string, unknown>;

/** What a plan runs with. */
export interface PlanContext {
  supergraphSchema: GraphQLSchema;
  operation: Operation;
  variables: Record<string, unknown>;
  caller: Caller;
  fetch: SubgraphFetch;
  /** Errors of the fetches, with paths into the client's response. */
  errors: GraphQLError[];
}

interface Cursor {
  path: ResponsePath;
  /** Objects of this request's own (in `owned`): fetches merge into them. */
  data: ResultMap | ResultMap[];
  root: ResultMap;
}

/** A plan's run: its context, and the mark of the objects of the tree it may write to. */
interface Run extends PlanContext {
  owned: Owner;
}

/** The mark of one plan run's objects. */
type Owner = number;
const MARK = Symbol('pulsegraph.planRun');
let runs = 0;

/** A fresh mark (a run's, or one for objects made outside a run, as in `select`). */
const newOwner = (): Owner => (runs = (runs + 1) % Number.MAX_SAFE_INTEGER);
const mark = <T extends object>(owner: Owner, value: T): T => (
  ((value as Record<symbol, unknown>)[MARK] = owner),
  value
);

/** Runs a plan node, merging what the subgraphs answer into `data` (the response's root object). */
export async function executePlan(context: PlanContext, node: PlanNode, data: ResultMap): Promise<void> {
  const run: Run = { ...context, owned: newOwner() };
  mark(run.owned, data);
  await executeNode(run, node, { path: [], data, root: data });
}

/** `value` if the request owns it, else a shallow copy it owns (the caller links it where `value` was). */
function own<T extends object>(owned: Owner, value: T): T {
  if ((value as Record<symbol, unknown>)[MARK] === owned) return value;
  return mark(owned, (Array.isArray(value) ? value.slice() : { ...value }) as T);
}

/** `parent[key]` made the request's own when it is an object or list; `parent` must be owned. */
function ownChild(owned: Owner, parent: ResultMap | unknown[], key: string | number): unknown {
  const value = (parent as Record<string | number, unknown>)[key];
  if (value === null || typeof value !== 'object') return value;
  const mine = own(owned, value);
  if (mine !== value) (parent as Record<string | number, unknown>)[key] = mine;
  return mine;
}

async function executeNode(context: Run, node: PlanNode, cursor: Cursor | undefined): Promise<void> {
  if (!cursor) return;
  switch (node.kind) {
    case 'Sequence':
      for (const child of node.nodes) await executeNode(context, child, cursor);
      return;
    case 'Parallel':
      await Promise.all(node.nodes.map((child) => executeNode(context, child, cursor)));
      return;
    case 'Flatten':
      return executeNode(context, node.node, moveInto(context, cursor, node.path));
    case 'Fetch':
      try {
        await executeFetch(context, node, cursor);
      } catch (error) {
        context.errors.push(new GraphQLError((error as Error).message, { path: cursor.path }));
      }
      return;
    case 'Condition': {
      const branch = evaluateCondition(node, context.operation.variableDefinitions, context.variables)
        ? node.ifClause
        : node.elseClause;
      if (branch) await executeNode(context, branch, cursor);
      return;
    }
    default:
      throw new Error(`plan node ${node.kind} is not supported here`);
  }
}

async function executeFetch(context: Run, fetch: FetchNode, cursor: Cursor): Promise<void> {
  const entities = Array.isArray(cursor.data) ? cursor.data.filter((e) => e != null) : [cursor.data];
  if (entities.length === 0) return;
  const variables: Record<string, unknown> = {};
  for (const name of fetch.variableUsages ?? []) {
    if (context.variables[name] !== undefined) variables[name] = context.variables[name];
  }
  if (!fetch.requires) {
    const answered = await send(context, fetch, cursor, variables);
    const received = answered && rewritten(context, fetch, answered);
    if (!received) return;
    for (const entity of entities) deepMerge(context.owned, entity, received);
    return;
  }
  const representations: ResultMap[] = [];
  const owners: ResultMap[] = [];
  for (const entity of entities) {
    const representation = select(context.supergraphSchema, entity, fetch.requires);
    if (representation?.['__typename']) {
      applyRewrites(context.supergraphSchema, fetch.inputRewrites, representation);
      representations.push(representation);
      owners.push(entity);
    }
  }
  if (representations.length === 0) return;
  const received = await send(context, fetch, cursor, { ...variables, representations });
  if (!received) return;
  const found = received['_entities'];
  if (!Array.isArray(found) || found.length !== representations.length) {
    throw new Error(
      `subgraph ${fetch.serviceName} answered ${representations.length} representations wrongly`,
    );
  }
  found.forEach((entity: ResultMap | null, i) => {
    if (entity) deepMerge(context.owned, owners[i]!, rewritten(context, fetch, entity, owners[i]));
  });
}

/**
 * An answer (or one of its entities, typed as its owner when it says no type) with the fetch's output
 * rewrites applied: to a copy, since the answer itself is read-only.
 */
function rewritten(context: Run, fetch: FetchNode, value: ResultMap, owner?: ResultMap): ResultMap {
  if (!fetch.outputRewrites?.length) return value;
  const copy = structuredClone(value);
  if (owner) copy['__typename'] ??= owner['__typename'];
  applyRewrites(context.supergraphSchema, fetch.outputRewrites, copy);
  return copy;
}

async function send(
  context: PlanContext,
  fetch: FetchNode,
  cursor: Cursor,
  variables: Record<string, unknown>,
): Promise<ResultMap | null | undefined> {
  const response = await context.fetch(
    fetch.serviceName,
    { query: fetch.operation, variables, operationName: fetch.operationName },
    context.caller,
  );
  if (response.errors?.length) {
    const paths = errorPaths(fetch, cursor);
    for (const error of response.errors)
      context.errors.push(downstreamError(error, fetch.serviceName, paths));
  }
  return response.data;
}

/** Maps a subgraph error's path (into `_entities` or the fetch's root) to a path of the client's response. */
function errorPaths(fetch: FetchNode, cursor: Cursor) {
  let hydrated: Array<Array<string | number>> | undefined;
  return (path: ReadonlyArray<string | number> | undefined): Array<string | number> | undefined => {
    if (fetch.requires && typeof path?.[1] === 'number') {
      hydrated ??= hydratePaths([], cursor.path, cursor.root);
      return [...(hydrated[path[1]] ?? []), ...path.slice(2)];
    }
    return path ? [...cursor.path, ...path] : undefined;
  };
}

function hydratePaths(
  parent: Array<string | number>,
  path: ResponsePath,
  data: unknown,
  out: Array<Array<string | number>> = [],
): Array<Array<string | number>> {
  if (data == null) return out;
  const [head, ...rest] = path;
  if (head === undefined) out.push([...parent]);
  else if (Array.isArray(data)) {
    data.forEach((value, i) => hydratePaths([...parent, i], head === '@' ? rest : path, value, out));
  } else if (typeof head === 'string' && Object.hasOwn(data, head)) {
    hydratePaths([...parent, head], rest, (data as ResultMap)[head], out);
  }
  return out;
}

function downstreamError(
  error: GraphQLFormattedError,
  serviceName: string,
  pathOf: ReturnType<typeof errorPaths>,
): GraphQLError {
  const extensions: Record<string, unknown> = { ...error.extensions, serviceName };
  extensions['code'] ??= 'DOWNSTREAM_SERVICE_ERROR';
  return new GraphQLError(error.message || `error while fetching from subgraph ${serviceName}`, {
    path: pathOf(error.path),
    extensions,
  });
}

/** Projects an entity onto a plan's `requires` selections (the representation sent to `_entities`). */
function select(
  schema: GraphQLSchema,
  source: unknown,
  selections: QueryPlanSelectionNode[],
): ResultMap | null {
  if (source == null || typeof source !== 'object') return null;
  const object = source as ResultMap;
  // What the planner asks of every entity (`... on Product { __typename upc }`): one inline fragment, read
  // straight into the representation (the loop below would build it twice and merge).
  if (selections.length === 1 && selections[0]!.kind === 'InlineFragment') {
    const { typeCondition, selections: inner } = selections[0]!;
    return typeCondition && isObjectOfType(schema, object, typeCondition)
      ? (select(schema, object, inner) ?? {})
      : {};
  }
  const result: ResultMap = {};
  for (const selection of selections) {
    if (selection.kind === 'Field') {
      const name = selection.alias ?? selection.name;
      const value: unknown = object[name];
      if (value === undefined) return null;
      const inner = selection.selections;
      result[name] = Array.isArray(value)
        ? value.map((item: unknown) => (inner ? select(schema, item, inner) : item))
        : inner
          ? select(schema, value, inner)
          : value;
    } else if (selection.typeCondition && isObjectOfType(schema, object, selection.typeCondition)) {
      const owner = newOwner();
      deepMerge(owner, mark(owner, result), select(schema, object, selection.selections));
    }
  }
  return result;
}

function moveInto(context: Run, cursor: Cursor, path: ResponsePath): Cursor | undefined {
  const data = flatten(context.owned, cursor.data, path);
  return data ? { path: cursor.path.concat(path), data, root: cursor.root } : undefined;
}

/**
 * The objects at `path` below `value`: one object when the path crosses no list ('@'), else every
 * object found, in order (nulls left out), without intermediate arrays. Every object on the way is made
 * the request's own (fetches merge into what this returns), `value` must be.
 */
function flatten(owned: Owner, value: unknown, path: ResponsePath): ResultMap | ResultMap[] | undefined {
  if (!path.includes('@')) {
    let at = value;
    for (const key of path) {
      if (at == null || typeof at !== 'object' || Array.isArray(at)) return undefined;
      at = Object.hasOwn(at, key) ? ownChild(owned, at as ResultMap, key) : undefined;
    }
    return at == null ? undefined : (at as ResultMap | ResultMap[]);
  }
  const out: ResultMap[] = [];
  collect(owned, value, path, 0, false, out);
  return out;
}

function collect(
  owned: Owner,
  value: unknown,
  path: ResponsePath,
  i: number,
  inList: boolean,
  out: ResultMap[],
): void {
  if (value == null) return;
  if (i === path.length) {
    if (inList && Array.isArray(value)) {
      for (let j = 0; j < value.length; j++) {
        const item = ownChild(owned, value, j);
        if (item != null) out.push(item as ResultMap);
      }
    } else out.push(value as ResultMap);
    return;
  }
  const head = path[i];
  if (head === '@') {
    if (!Array.isArray(value)) return;
    for (let j = 0; j < value.length; j++) collect(owned, ownChild(owned, value, j), path, i + 1, true, out);
    return;
  }
  if (Array.isArray(value) || typeof value !== 'object') return;
  if (Object.hasOwn(value, head as string))
    collect(owned, ownChild(owned, value as ResultMap, head as string), path, i + 1, inList, out);
}

/**
 * Merges `source` (read-only) into `target` (owned): objects field by field, lists element by element.
 * What the target gets from the source it links to; what it already had and gains fields, it owns first.
 */
export function deepMerge(owned: Owner, target: ResultMap, source: ResultMap | null | undefined): ResultMap {
  if (!source) return target;
  for (const key in source) {
    if (key === '__proto__') continue;
    const value = source[key];
    const existing = target[key];
    if (existing && value && typeof existing === 'object' && typeof value === 'object') {
      const mine = ownChild(owned, target, key) as ResultMap | unknown[];
      if (Array.isArray(mine) && Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          const current: unknown = mine[i];
          if (current && item && typeof current === 'object' && typeof item === 'object')
            deepMerge(owned, ownChild(owned, mine, i) as ResultMap, item as ResultMap);
          else mine[i] = item;
        }
      } else deepMerge(owned, mine as ResultMap, value as ResultMap);
    } else target[key] = value;
  }
  return target;
}
