// The client headers a peer forwards to every subgraph: those BENCH_FORWARD_HEADERS names (comma-separated,
// e.g. "authorization", as the dashboard bench's subgraphs verify the caller's JWT), none by default.

/** The header names to forward, lower-cased. */
export const FORWARDED_HEADERS = (process.env['BENCH_FORWARD_HEADERS'] ?? '')
  .split(',')
  .map((name) => name.trim().toLowerCase())
  .filter(Boolean);

/** The forwarded headers a request carries, read with `get`. */
export function forwardedHeaders(get: (name: string) => string | null | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const value = get(name);
    if (value) headers[name] = value;
  }
  return headers;
}
