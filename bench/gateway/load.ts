// Load for the gateway bench: autocannon from this process, closed loop (N connections, each sending its
// next request when the last is answered) or at a fixed overall rate; every response body is checked
// against the one expected for that request, and every response time is kept for percentiles.
import autocannon from 'autocannon';

/** A request's body (and headers besides the run's) and the response body every peer must answer to it. */
export interface Exchange {
  body: string;
  expected: string;
  headers?: Record<string, string>;
}

/** Options of runLoad. */
export interface LoadOptions {
  url: string;
  headers: Record<string, string>;
  connections: number;
  seconds: number;
  /** Requests per second over all connections; unset: closed loop. */
  rate?: number;
  /** The n-th request of this run (from 0). */
  exchange(n: number): Exchange;
  /** Accepts an answer that is not byte for byte the expected one (e.g. the same JSON in another order). */
  matches?: (body: string, expected: string) => boolean;
}

/** What a load run measured. */
export interface LoadResult {
  /** Requests answered within the run. */
  requests: number;
  /** Requests sent, including those still in flight when the run ended. */
  sent: number;
  seconds: number;
  /** Responses whose body differs from the expected one (Apollo's trailing newline aside), unless matched. */
  mismatches: number;
  /** Connection errors, timeouts and non-2xx answers. */
  failures: number;
  /** The first mismatching body, to show what went wrong. */
  firstMismatch?: string;
  /** Response times in ms, in arrival order. */
  latencies: number[];
}

/** Runs load against a gateway for options.seconds and reports it. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  let sent = 0;
  let mismatches = 0;
  let firstMismatch: string | undefined;
  const latencies: number[] = [];
  const instance = autocannon({
    url: options.url,
    method: 'POST',
    connections: options.connections,
    duration: options.seconds,
    headers: { 'content-type': 'application/json', ...options.headers },
    overallRate: options.rate,
    timeout: 30,
    requests: [
      {
        setupRequest(request, context) {
          const { body, expected, headers } = options.exchange(sent++);
          context['expected'] = expected;
          return headers
            ? { ...request, body, headers: { ...request.headers, ...headers } }
            : { ...request, body };
        },
        onResponse(_status, body, context) {
          // Apollo Server ends its JSON with a newline; every other byte must match.
          const expected = context['expected'] as string;
          if (body === expected || (body.length === expected.length + 1 && body === `${expected}\n`)) return;
          if (options.matches?.(body, expected)) return;
          mismatches++;
          firstMismatch ??= body.slice(0, 500);
        },
      },
    ],
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    latencies.push(ms);
  });
  const result = await instance;
  return {
    requests: result.requests.total,
    sent,
    seconds: result.duration,
    mismatches,
    failures: result.errors + result.timeouts + result.non2xx,
    firstMismatch,
    latencies,
  };
}

/** The p-quantile (0..1) of some values. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
}
