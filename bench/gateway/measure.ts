// One load phase against one gateway process, and what it cost that process: CPU time per request (from
// /proc), latency percentiles, resident memory, and the answers that were wrong or failed.
import { cpuSeconds, residentMiB } from '../cores.ts';
import { median } from '../report.ts';
import { percentile, runLoad, type Exchange, type LoadResult } from './load.ts';
import type { BenchProcess } from './servers.ts';

/** One load phase of one peer. */
export interface Phase {
  rps: number;
  cpuMsPerRequest: number;
  p50: number;
  p95: number;
  p99: number;
  /** Subgraph operations per request sent (NaN when the phase could not count them). */
  fetchesPerRequest: number;
  /** HTTP requests to the subgraphs per request sent (NaN when not counted). */
  exchangesPerRequest: number;
  rssMiB: number;
  mismatches: number;
  failures: number;
  requests: number;
  firstMismatch?: string;
}

/** Options of measure. */
export interface MeasureOptions {
  token: string;
  connections: number;
  exchange: (n: number) => Exchange;
  seconds: number;
  /** Requests per second over all connections; unset: closed loop. */
  rate?: number;
  /** Subgraph operations answered so far: counted around the phase, and polled until they stop. */
  fetches?: () => Promise<number>;
  /** HTTP requests the subgraphs received so far (read before the phase and once its fetches stopped). */
  exchanges?: () => Promise<number>;
  /** Accepts the expected JSON in another key order (runLoad's `sameJson`). */
  sameJson?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs one load phase against a peer, measuring its CPU time (and the subgraph fetches it caused). */
export async function measure(
  peer: BenchProcess,
  options: MeasureOptions,
): Promise<Phase & { load: LoadResult }> {
  const { fetches = () => Promise.resolve(NaN), exchanges = () => Promise.resolve(NaN) } = options;
  const cpuBefore = cpuSeconds(peer.pid);
  const fetchesBefore = await fetches();
  const exchangesBefore = await exchanges();
  const load = await runLoad({
    url: peer.url,
    headers: { authorization: `Bearer ${options.token}` },
    connections: options.connections,
    seconds: options.seconds,
    rate: options.rate,
    exchange: options.exchange,
    sameJson: options.sameJson,
  });
  // Requests in flight when the run ended still cost CPU and fetches: wait until the subgraphs are idle
  // (or, uncounted, a moment), and count per request sent.
  let fetchesAfter = await fetches();
  if (Number.isNaN(fetchesAfter)) await sleep(500);
  for (let quiet = 0; quiet < 3 && !Number.isNaN(fetchesAfter);) {
    await sleep(100);
    const now = await fetches();
    quiet = now === fetchesAfter ? quiet + 1 : 0;
    fetchesAfter = now;
  }
  const cpu = cpuSeconds(peer.pid) - cpuBefore;
  const exchangesAfter = await exchanges();
  return {
    load,
    rps: load.requests / load.seconds,
    cpuMsPerRequest: (cpu * 1000) / load.sent,
    p50: percentile(load.latencies, 0.5),
    p95: percentile(load.latencies, 0.95),
    p99: percentile(load.latencies, 0.99),
    fetchesPerRequest: (fetchesAfter - fetchesBefore) / load.sent,
    exchangesPerRequest: (exchangesAfter - exchangesBefore) / load.sent,
    rssMiB: residentMiB(peer.pid),
    mismatches: load.mismatches,
    failures: load.failures,
    requests: load.requests,
    firstMismatch: load.firstMismatch,
  };
}

/** The median of a field over phases. */
export const med = (phases: Phase[], field: keyof Omit<Phase, 'firstMismatch'>) =>
  median(phases.map((p) => p[field]));
