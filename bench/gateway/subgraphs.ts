// The four subgraphs of graphql-hive/graphql-gateways-benchmark (accounts, inventory, products, reviews)
// with its data and resolvers, in Federation 1 SDL as the originals publish (`extend type`), so that every
// peer, mercurius' Federation 1 gateway included, composes the same graph.
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse, type GraphQLSchema } from 'graphql';

// @apollo/subgraph does not export its resolver map type; it is the one of its legacy module argument.
type ResolverMap = NonNullable<
  Extract<Parameters<typeof buildSubgraphSchema>[0], { typeDefs: unknown; resolvers?: unknown }>['resolvers']
>;

interface User {
  id: string;
  name?: string;
  username: string;
  birthday?: number;
}
interface Product {
  upc: string;
  name?: string;
  price?: number | null;
  weight?: number | null;
}
interface Review {
  id: string;
  body: string;
  product: { upc: string };
}

const users: User[] = [
  ['1', 'Uri Goldshtein', 'urigo'],
  ['2', 'Dotan Simha', 'dotansimha'],
  ['3', 'Kamil Kisiela', 'kamilkisiela'],
  ['4', 'Arda Tanrikulu', 'ardatan'],
  ['5', 'Gil Gardosh', 'gilgardosh'],
  ['6', 'Laurin Quast', 'laurin'],
].map(([id, name, username]) => ({ id: id!, name, username: username!, birthday: 1234567890 }));

const products: Product[] = (
  [
    ['1', 'Table', 899, 100],
    ['2', 'Couch', 1299, 1000],
    ['3', 'Glass', 15, 20],
    ['4', 'Chair', 499, 100],
    ['5', 'TV', 1299, 1000],
    ['6', 'Lamp', 6999, 300],
    ['7', 'Grill', 3999, 2000],
    ['8', 'Fridge', 100000, 6000],
    ['9', 'Sofa', 9999, 800],
  ] as const
).map(([upc, name, price, weight]) => ({ upc, name, price, weight }));

const inStock = new Map(['1', '5', '6', '7', '9'].map((upc) => [upc, true]));

const LOREM =
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.';
const SED_UT =
  'Sed ut perspiciatis unde omnis iste natus error sit voluptatem accusantium doloremque laudantium, totam rem aperiam, eaque ipsa quae ab illo inventore veritatis et quasi architecto beatae vitae dicta sunt explicabo. Nemo enim ipsam voluptatem quia voluptas sit aspernatur aut odit aut fugi';
const SED_QUIA =
  'sed quia consequuntur magni dolores eos qui ratione voluptatem sequi nesciunt. Neque porro quisquam est, qui dolorem ipsum quia dolor sit amet, consectetur, adipisci velit, sed quia non numquam eius modi tempora incidunt ut labore et dolore magnam aliquam quaerat voluptatem.';
const UT_ENIM =
  'Ut enim ad minima veniam, quis nostrum exercitationem ullam corporis suscipit laboriosam, nisi ut aliquid ex ea commodi consequatur? Quis autem';
const AT_VERO =
  'At vero eos et accusamus et iusto odio dignissimos ducimus qui blanditiis praesentium voluptatum deleniti atque corrupti quos dolores et quas molestias excepturi sint occaecati cupiditate non provident, similique sunt in culpa qui officia deserunt mollitia animi, id est laborum et dolorum fuga. Et harum quidem rerum facilis est et expedita distinctio. Nam libero tempore, cum soluta nobis est eligendi optio cumque nihil impedit quo minus id quod maxime placeat facere possimus, omnis voluptas assumenda est, omnis dolor repellendus. Temporibus autem quibusdam et aut officiis debitis aut rerum necessitatibus saepe eveniet ut et voluptates repudiandae sint et molestiae non recusandae. Itaque earum rerum hic tenetur a sapiente delectus, ut aut reiciendis voluptatibus maiores alias consequatur aut perferendis doloribus asperiores repellat.';

const reviews: Review[] = (
  [
    [LOREM, '1'],
    [SED_UT, '1'],
    [SED_QUIA, '1'],
    [UT_ENIM, '1'],
    [LOREM, '2'],
    [SED_UT, '2'],
    [SED_QUIA, '2'],
    [UT_ENIM, '2'],
    [UT_ENIM, '3'],
    [UT_ENIM, '4'],
    [AT_VERO, '4'],
  ] as const
).map(([body, upc], i) => ({ id: String(i + 1), body, product: { upc } }));

/** A subgraph of the benchmark: its name, Federation 1 SDL and resolvers. */
export interface BenchSubgraph {
  name: string;
  sdl: string;
  resolvers: ResolverMap;
}

/** The four subgraphs, as the benchmark defines them (reviews' quirks included: every author is user 1). */
export const benchSubgraphs: BenchSubgraph[] = [
  {
    name: 'accounts',
    sdl: `extend type Query { me: User user(id: ID!): User users: [User] }
      type User @key(fields: "id") { id: ID! name: String username: String birthday: Int }`,
    resolvers: {
      Query: {
        me: () => users[0],
        user: (_: unknown, { id }: { id: string }) => users.find((u) => u.id === id) ?? null,
        users: () => users,
      },
      User: { __resolveReference: ({ id }: { id: string }) => users.find((u) => u.id === id) },
    },
  },
  {
    name: 'inventory',
    sdl: `extend type Product @key(fields: "upc") {
        upc: String! @external weight: Int @external price: Int @external
        inStock: Boolean shippingEstimate: Int @requires(fields: "price weight")
      }`,
    resolvers: {
      Product: {
        __resolveReference: (product: Product) => ({
          ...product,
          inStock: inStock.get(product.upc) ?? false,
        }),
        shippingEstimate: ({ price, weight }: Product) => {
          if (price == null) return null;
          if (price > 1000) return 0;
          return weight == null ? null : Math.trunc(weight / 2);
        },
      },
    },
  },
  {
    name: 'products',
    sdl: `extend type Query { topProducts(first: Int = 5): [Product] }
      type Product @key(fields: "upc") { upc: String! name: String price: Int weight: Int }`,
    resolvers: {
      Query: {
        topProducts: (_: unknown, { first }: { first: number }) => products.slice(0, Math.max(0, first)),
      },
      Product: { __resolveReference: ({ upc }: { upc: string }) => products.find((p) => p.upc === upc) },
    },
  },
  {
    name: 'reviews',
    sdl: `type Review @key(fields: "id") { id: ID! body: String product: Product author: User @provides(fields: "username") }
      extend type User @key(fields: "id") { id: ID! @external username: String @external reviews: [Review] }
      extend type Product @key(fields: "upc") { upc: String! @external reviews: [Review] }`,
    resolvers: {
      Review: {
        __resolveReference: ({ id }: { id: string }) => reviews.find((r) => r.id === id),
        author: () => ({ id: '1', username: 'urigo' }),
      },
      User: {
        __resolveReference: ({ id }: { id: string }) => ({ id, username: 'user' }),
        reviews: () => reviews.slice(0, 2),
      },
      Product: {
        __resolveReference: ({ upc }: { upc: string }) => ({ upc }),
        reviews: ({ upc }: { upc: string }) => reviews.filter((r) => r.product.upc === upc),
      },
    },
  },
];

/** The executable schema of a benchmark subgraph. */
export function subgraphSchema(subgraph: BenchSubgraph): GraphQLSchema {
  return buildSubgraphSchema({ typeDefs: parse(subgraph.sdl), resolvers: subgraph.resolvers });
}
