// The plan executor over shared subgraph answers: requests in flight get the same parsed answer objects
// (subgraphFetcher.ts shares identical fetches), so the executor must never write into them. Here every
// answer is deep-frozen and shared by concurrent requests: a write would throw (ES modules are strict)
// and surface as an error; the answers must equal those built from private copies. The graph is the
// gateway bench's (entities, @requires, @provides, lists of lists of entities).
import { composeServices } from '@apollo/composition';
import type { Operation } from '@apollo/federation-internals';
import type { FetchNode, PlanNode } from '@apollo/query-planner';
import { buildSchema, execute, OperationTypeNode, parse, type DocumentNode } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { BENCH_QUERY, BENCH_QUERY_WITH_VARIABLE } from '../../bench/gateway/query.ts';
import { benchSubgraphs, subgraphSchema } from '../../bench/gateway/subgraphs.ts';
import { executeOperation, serializeResult } from './execute.ts';
import { executePlan } from './planExecutor.ts';
import type { SubgraphFetch, SubgraphResponse } from './subgraphFetcher.ts';
import { loadSupergraph, type LoadedSupergraph } from './supergraph.ts';

let supergraph: LoadedSupergraph;
const schemas = new Map(benchSubgraphs.map((s) => [s.name, subgraphSchema(s)]));

beforeAll(() => {
  const composed = composeServices(
    benchSubgraphs.map((s) => ({
      name: s.name,
      url: `http://${s.name}.invalid/graphql`,
      typeDefs: parse(s.sdl),
    })),
  );
  if (composed.errors) throw new Error(composed.errors.map((e) => e.message).join('; '));
  supergraph = loadSupergraph(composed.supergraphSdl);
});

/** Answers a subgraph operation in-process, as JSON over the wire would (a fresh tree each time). */
async function answer(subgraph: string, body: Parameters<SubgraphFetch>[1]): Promise<SubgraphResponse> {
  const result = await execute({
    schema: schemas.get(subgraph)!,
    document: parse(body.query),
    variableValues: body.variables,
    operationName: body.operationName,
  });
  return JSON.parse(JSON.stringify(result)) as SubgraphResponse;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** One frozen answer per distinct fetch, handed to every request that sends it. */
function sharedFetch(): { fetch: SubgraphFetch; shared: () => number } {
  const answers = new Map<string, Promise<SubgraphResponse>>();
  let hits = 0;
  const fetch: SubgraphFetch = (subgraph, body) => {
    const key = `${subgraph}\n${JSON.stringify(body)}`;
    const known = answers.get(key);
    if (known) hits++;
    else answers.set(key, answer(subgraph, body).then(deepFreeze));
    return answers.get(key)!;
  };
  return { fetch, shared: () => hits };
}

const run = async (document: DocumentNode, variables: Record<string, unknown>, fetch: SubgraphFetch) =>
  serializeResult(await executeOperation({ supergraph, document, variables, caller: {}, fetch }));

describe('the plan executor over shared, read-only subgraph answers', () => {
  it.each([
    ['the nested query', BENCH_QUERY, () => ({})],
    ['the nested query with $first', BENCH_QUERY_WITH_VARIABLE, () => ({ first: 5 })],
  ])('answers %s as from private copies, writing into none of them', async (_, query, variables) => {
    const document = parse(query);
    const expected = await run(document, variables(), answer);
    expect(JSON.parse(expected)).not.toHaveProperty('errors');
    expect(expected.length).toBeGreaterThan(10_000); // the whole nested tree, not an early null
    const { fetch, shared } = sharedFetch();
    const answers = await Promise.all(Array.from({ length: 4 }, () => run(document, variables(), fetch)));
    expect(shared()).toBeGreaterThan(0); // later requests (and repeated fetches within one) got shared trees
    for (const text of answers) expect(text).toBe(expected);
  });
});

describe('representations for _entities', () => {
  const schema = buildSchema(`
    interface Node { id: ID! }
    type Product implements Node { id: ID! upc: String }
    type Review implements Node { id: ID! }
    type Query { items: [Node] }
  `);
  const requires = (typeCondition: string, ...fields: string[]): FetchNode['requires'] => [
    { kind: 'InlineFragment', typeCondition, selections: fields.map((name) => ({ kind: 'Field', name })) },
  ];
  const plan = (entityRequires: FetchNode['requires']): PlanNode => ({
    kind: 'Sequence',
    nodes: [
      {
        kind: 'Fetch',
        serviceName: 'root',
        operation: '{ items { __typename id upc } }',
        operationName: undefined,
        operationKind: OperationTypeNode.QUERY,
      },
      {
        kind: 'Flatten',
        path: ['items', '@'],
        node: {
          kind: 'Fetch',
          serviceName: 'entities',
          operation:
            'query($representations: [_Any!]!) { _entities(representations: $representations) { ... on Product { name } } }',
          operationName: undefined,
          operationKind: OperationTypeNode.QUERY,
          requires: entityRequires,
        },
      },
    ],
  });
  const items = [
    { __typename: 'Product', id: '1', upc: 'a' },
    { __typename: 'Review', id: '2', upc: null },
    { __typename: 'Product', id: '3' }, // no upc: it cannot be represented
  ];

  async function representationsFor(entityRequires: FetchNode['requires']) {
    const sent: unknown[] = [];
    const fetch: SubgraphFetch = (subgraph, body) => {
      if (subgraph === 'root')
        return Promise.resolve({ data: deepFreeze({ items: structuredClone(items) }) });
      const representations = body.variables?.['representations'] as unknown[];
      sent.push(...representations);
      return Promise.resolve({ data: { _entities: representations.map(() => ({ name: 'n' })) } });
    };
    const data = {};
    const context = {
      supergraphSchema: schema,
      operation: {} as Operation,
      variables: {},
      caller: {},
      fetch,
      errors: [],
    };
    await executePlan(context, plan(entityRequires), data);
    return { sent, data, errors: context.errors };
  }

  it('projects each entity onto the fragment of its type and leaves out those it does not match or lacks a field of', async () => {
    const { sent, data, errors } = await representationsFor(requires('Product', '__typename', 'id', 'upc'));
    expect(errors).toEqual([]);
    expect(sent).toEqual([{ __typename: 'Product', id: '1', upc: 'a' }]);
    // As the client gets it (the tree's objects carry the run's mark, a symbol JSON leaves out).
    expect(JSON.parse(JSON.stringify(data))).toEqual({
      items: [{ ...items[0], name: 'n' }, items[1], items[2]],
    });
  });

  it('matches an abstract type condition through the schema', async () => {
    const { sent } = await representationsFor(requires('Node', '__typename', 'id'));
    expect(sent).toEqual([
      { __typename: 'Product', id: '1' },
      { __typename: 'Review', id: '2' },
      { __typename: 'Product', id: '3' },
    ]);
  });
});
