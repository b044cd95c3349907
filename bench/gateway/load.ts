// Load for the gateway bench from this process: a closed loop with autocannon (N connections, each sending
// its next request when the last is answered), or an open loop at a fixed rate (requests sent at even
// intervals whatever the answers, over a pool of N connections); every response body is checked against
// the one expected for that request, and every response time is kept for percentiles.
import autocannon from 'autocannon';
import { Pool } from 'undici';

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
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return options.rate ? openLoop(options, options.rate) : closedLoop(options);
}

/** Whether a body is the expected one (Apollo Server ends its JSON with a newline; every other byte must match). */
function sameBody(options: LoadOptions, body: string, expected: string): boolean {
  if (body === expected || (body.length === expected.length + 1 && body === `${expected}\n`)) return true;
  return options.matches?.(body, expected) ?? false;
}

/**
 * Request n is due at n / rate seconds from the start and is sent then, answered or not what came before
 * (autocannon's overallRate instead sends each second's share at once when the second starts: a burst
 * that measures queueing, not latency). Its time counts from when it was due, so a client or server
 * falling behind shows in the percentiles instead of slowing the schedule (no coordinated omission).
 */
async function openLoop(options: LoadOptions, rate: number): Promise<LoadResult> {
  const url = new URL(options.url);
  const pool = new Pool(url.origin, { connections: options.connections, pipelining: 1 });
  const headers = { 'content-type': 'application/json', ...options.headers };
  const latencies: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let mismatches = 0;
  let failures = 0;
  let firstMismatch: string | undefined;
  const send = async (n: number, due: number) => {
    const exchange = options.exchange(n);
    try {
      const response = await pool.request({
        path: url.pathname,
        method: 'POST',
        headers: exchange.headers ? { ...headers, ...exchange.headers } : headers,
        body: exchange.body,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      const body = await response.body.text();
      latencies.push(performance.now() - due);
      if (response.statusCode >= 300) failures++;
      else if (!sameBody(options, body, exchange.expected)) {
        mismatches++;
        firstMismatch ??= body.slice(0, 500);
      }
    } catch {
      failures++;
    }
  };
  const interval = 1000 / rate;
  const start = performance.now();
  const end = start + options.seconds * 1000;
  let sent = 0;
  for (;;) {
    const due = start + sent * interval;
    if (due >= end) break;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const request = send(sent++, due).finally(() => inFlight.delete(request));
    inFlight.add(request);
  }
  const seconds = (performance.now() - start) / 1000;
  await Promise.all(inFlight);
  await pool.close();
  return { requests: latencies.length, sent, seconds, mismatches, failures, firstMismatch, latencies };
}

async function closedLoop(options: LoadOptions): Promise<LoadResult> {
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
          if (sameBody(options, body, context['expected'] as string)) return;
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
