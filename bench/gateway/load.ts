// Load for the gateway bench: a closed loop with autocannon from this process (N connections, each sending
// its next request when the last is answered), or an open loop at a fixed rate in a worker thread
// (bench/gateway/openLoop.ts: requests sent at even intervals whatever the answers, over a pool of N
// connections); every response body is checked against the one expected for that request, and every
// response time is kept for percentiles.
import autocannon from 'autocannon';
import { Worker } from 'node:worker_threads';
import { AnswerTally } from './answerCheck.ts';
import type { OpenLoopJob } from './openLoop.ts';

const OPEN_LOOP = new URL('./openLoop.ts', import.meta.url);
/** The open loop's young generation (V8 splits it into its semi-spaces). */
const OPEN_LOOP_YOUNG_MB = 12;

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
  /** Accepts an answer that is the expected JSON in another key order (counted in `reordered`). */
  sameJson?: boolean;
}

/** What a load run measured. */
export interface LoadResult {
  /** Requests answered within the run. */
  requests: number;
  /** Requests sent, including those still in flight when the run ended. */
  sent: number;
  seconds: number;
  /** Responses whose body differs from the expected one (Apollo's trailing newline aside), unless sameJson. */
  mismatches: number;
  /** Responses right only as JSON in another key order (with sameJson). */
  reordered: number;
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

/**
 * Runs the open loop in a worker thread (bench/gateway/openLoop.ts) with a young generation of a few MiB,
 * so that its collections stay short; every exchange it may send is computed here and handed over.
 */
async function openLoop(options: LoadOptions, rate: number): Promise<LoadResult> {
  const count = Math.ceil(rate * options.seconds);
  const job: OpenLoopJob = {
    url: options.url,
    headers: options.headers,
    connections: options.connections,
    seconds: options.seconds,
    rate,
    // The structured clone sends an exchange object once however many requests repeat it.
    exchanges: Array.from({ length: count }, (_, n) => options.exchange(n)),
    sameJson: options.sameJson ?? false,
  };
  const worker = new Worker(OPEN_LOOP, {
    workerData: job,
    resourceLimits: { maxYoungGenerationSizeMb: OPEN_LOOP_YOUNG_MB },
  });
  try {
    return await new Promise<LoadResult>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) =>
        reject(new Error(`the open loop's worker exited (${code}) without a result`)),
      );
    });
  } finally {
    await worker.terminate();
  }
}

async function closedLoop(options: LoadOptions): Promise<LoadResult> {
  let sent = 0;
  const answers = new AnswerTally(options.sameJson);
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
          answers.record(body, context['expected'] as string);
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
    mismatches: answers.mismatches,
    reordered: answers.reordered,
    failures: result.errors + result.timeouts + result.non2xx,
    firstMismatch: answers.firstMismatch,
    latencies,
  };
}

/** The p-quantile (0..1) of some values. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
}
