// The response shaper against what graphql-js's own executor answers for the same data and operation:
// aliases, fragments on interfaces and unions, @skip/@include, __typename, null propagation, bad values.
import { buildSchema, executeSync, getOperationAST, parse, type GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { DATA_HEAD, operationShape, writeShaped } from './responseShape.ts';

const schema = buildSchema(`
  interface Node { id: ID! }
  type User implements Node { id: ID! name: String reviews: [Review!] role: Role friends: [[User]] }
  type Review implements Node { id: ID! body: String! author: User stars: Int }
  union Result = User | Review
  enum Role { ADMIN VIEWER }
  type Query { me: User node(id: ID!): Node search: [Result] strict: User! version: String }
`);

/** Shapes `data` (keyed by response names, as merged subgraph answers are) for `query`. */
function shape(query: string, data: Record<string, unknown>, variables: Record<string, unknown> = {}) {
  const document = parse(query);
  const errors: GraphQLError[] = [];
  const bytes = writeShaped(
    operationShape(schema, document, getOperationAST(document)!, variables),
    data,
    errors,
    () => ({ queryType: { name: 'Query' } }),
  );
  const text = bytes && bytes.toString('utf8').slice(DATA_HEAD.length, -1);
  return { text, data: text === null ? null : (JSON.parse(text) as unknown), errors };
}

/** What graphql-js answers when the default resolvers read `data` (keyed by field names). */
function reference(query: string, data: Record<string, unknown>, variables: Record<string, unknown> = {}) {
  const result = executeSync({ schema, document: parse(query), rootValue: data, variableValues: variables });
  return {
    text: JSON.stringify(result.data),
    errors: (result.errors ?? []).map((e) => ({ message: e.message, path: e.path })),
  };
}

const me = {
  __typename: 'User',
  id: 'u1',
  name: 'Ada',
  role: 'ADMIN',
  reviews: [
    {
      __typename: 'Review',
      id: 'r1',
      body: 'good',
      stars: 5,
      author: { __typename: 'User', id: 'u1', name: 'Ada' },
    },
    { __typename: 'Review', id: 'r2', body: 'bad', stars: 1, author: null },
  ],
  friends: [[{ __typename: 'User', id: 'u2', name: 'Bo' }, null], null],
};

describe('the response shaper', () => {
  it('writes the same JSON text as graphql-js for fields, lists of lists and fragments', () => {
    const query = `
      query { me { ...U reviews { body ... on Node { id } author { name } } friends { name } } version }
      fragment U on User { id name role ... on Node { id } }`;
    const data = { me, version: null };
    expect(shape(query, data).text).toBe(reference(query, data).text);
  });

  it('writes aliases in the order the operation selects them, merging fields met twice', () => {
    const query = `{ me { who: name id ... on User { who: name reviews { stars } } reviews { body } } }`;
    const data = {
      me: { __typename: 'User', id: 'u1', who: 'Ada', reviews: [{ stars: 5, body: 'x', extra: 1 }] },
    };
    expect(shape(query, data).text).toBe('{"me":{"who":"Ada","id":"u1","reviews":[{"stars":5,"body":"x"}]}}');
  });

  it("reads aliases named like Object.prototype's members only from the object itself", () => {
    const query = `{ me { constructor: name toString: id __proto__: role hasOwnProperty: name } }`;
    const data = JSON.parse('{"me":{"__typename":"User","toString":"u1","__proto__":"ADMIN"}}') as Record<
      string,
      unknown
    >;
    expect(shape(query, data)).toMatchObject({
      text: '{"me":{"constructor":null,"toString":"u1","__proto__":"ADMIN","hasOwnProperty":null}}',
      errors: [],
    });
    expect(shape(`{ me { __proto__: role } }`, { me: { __typename: 'User' } })).toMatchObject({
      text: '{"me":{"__proto__":null}}',
      errors: [],
    });
  });

  it('writes an object whose runtime type selects no field as {}', () => {
    const query = `{ search { ... on Review { body } } }`;
    expect(shape(query, { search: [{ __typename: 'User', name: 'Ada' }] }).text).toBe('{"search":[{}]}');
  });

  it('picks the fragments of each runtime type by __typename, on interfaces and unions', () => {
    const query = `{ search { __typename ... on User { name } ... on Node { id } ... on Review { body } } }`;
    const data = {
      search: [
        { __typename: 'User', name: 'Ada', id: 'u1' },
        { __typename: 'Review', id: 'r1', body: 'good' },
        null,
      ],
    };
    expect(shape(query, data).text).toBe(
      '{"search":[{"__typename":"User","name":"Ada","id":"u1"},{"__typename":"Review","id":"r1","body":"good"},null]}',
    );
  });

  it('decides @skip and @include by the variables, their defaults included, per request', () => {
    const query = `query ($skip: Boolean = true, $include: Boolean!) {
      me { name @skip(if: $skip) id @include(if: $include) role @include(if: true) } }`;
    const data = { me };
    expect(shape(query, data, { include: false }).text).toBe('{"me":{"role":"ADMIN"}}');
    expect(shape(query, data, { skip: false, include: true }).text).toBe(
      '{"me":{"name":"Ada","id":"u1","role":"ADMIN"}}',
    );
    expect(shape(query, data, { include: false }).text).toBe('{"me":{"role":"ADMIN"}}');
  });

  it('propagates a null in a non-null position to the nearest nullable parent, with one error', () => {
    const query = `{ me { name reviews { id body } } }`;
    const data = {
      me: {
        ...me,
        reviews: [
          { id: 'r1', body: 'good' },
          { id: 'r2', body: null },
        ],
      },
    };
    const shaped = shape(query, data);
    const expected = reference(query, data);
    expect(shaped.text).toBe(expected.text);
    expect(shaped.text).toBe('{"me":{"name":"Ada","reviews":null}}');
    expect(shaped.errors.map((e) => ({ message: e.message, path: e.path }))).toEqual([
      {
        message: 'Cannot return null for non-nullable field Review.body.',
        path: ['me', 'reviews', 1, 'body'],
      },
    ]);
    expect(expected.errors[0]?.path).toEqual(['me', 'reviews', 1, 'body']);
  });

  it('nulls the whole data when a non-null root field is null', () => {
    const shaped = shape('{ strict { id } version }', { strict: null, version: '1' });
    expect(shaped.text).toBeNull();
    expect(shaped.errors.map((e) => e.message)).toEqual([
      'Cannot return null for non-nullable field Query.strict.',
    ]);
  });

  it('refuses values that are not of their type: an unknown enum value, a string for an Int, a bad __typename', () => {
    const shaped = shape('{ me { role reviews { stars } } node(id: "x") { id } }', {
      me: { role: 'OWNER', reviews: [{ stars: '5' }] },
      node: { __typename: 'Secret', id: 'x' },
    });
    expect(shaped.data).toEqual({ me: { role: null, reviews: [{ stars: null }] }, node: null });
    expect(shaped.errors.map((e) => e.message)).toEqual([
      'Invalid value found for field User.role.',
      'Invalid value found for field Review.stars.',
      'Invalid __typename found for object at field Query.node.',
    ]);
  });

  it('answers root introspection fields through the handler, and escapes strings as JSON', () => {
    const shaped = shape('{ __schema { queryType { name } } me { name } }', {
      me: { name: 'say "hi"\n\u2028' },
    });
    expect(shaped.data).toEqual({
      __schema: { queryType: { name: 'Query' } },
      me: { name: 'say "hi"\n\u2028' },
    });
  });
});
