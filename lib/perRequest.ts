/**
 * A value made once per request, on first use, and kept as long as the request's context lives: the
 * DataLoaders through which a request's resolvers share their queries.
 */
export function perRequest<Context extends object, T>(
  make: (context: Context) => T,
): (context: Context) => T {
  const made = new WeakMap<Context, T>();
  return (context) => {
    if (!made.has(context)) made.set(context, make(context));
    return made.get(context)!;
  };
}
