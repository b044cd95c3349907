// The benchmark's nested query (graphql-hive/graphql-gateways-benchmark), and its variant with a variable
// that changes on every request, so no peer can collapse concurrent identical requests into one.
const FRAGMENTS = `
fragment User on User { id username name }
fragment Review on Review { id body }
fragment Product on Product { inStock name price shippingEstimate upc weight }`;

const selection = (topProducts: string) => `{
  users {
    ...User
    reviews { ...Review product { ...Product reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } } } }
  }
  ${topProducts} {
    ...Product
    reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } }
  }
}`;

/** The benchmark's query, as its k6 scenario sends it. */
export const BENCH_QUERY = `query TestQuery ${selection('topProducts')}${FRAGMENTS}`;

/** The same query with topProducts(first: $first): every request carries a different $first. */
export const BENCH_QUERY_WITH_VARIABLE = `query TestQuery($first: Int) ${selection('topProducts(first: $first)')}${FRAGMENTS}`;

/** Products the subgraph has: any $first from here on answers the same list. */
export const PRODUCT_COUNT = 9;
