import { DateTimeResolver, JSONResolver } from 'graphql-scalars';

/** The contract's scalars: DateTime (ISO-8601 with zone) and JSON, from graphql-scalars. */
export const scalars = { DateTime: DateTimeResolver, JSON: JSONResolver };
