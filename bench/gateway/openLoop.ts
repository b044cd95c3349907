// The fixed-rate open loop, run in a worker thread of its own (bench/gateway/load.ts starts it): an isolate
// with a small young generation and nothing else in its heap. In the bench's main isolate, whose young
// generation had grown to tens of MiB under the closed-loop phases, a scavenge took 20 to 90 ms on the
// load's core; every request in flight then (and the subgraphs on that core) waited for it, and that
// showed in every peer's p95 and p99 (docs/performance.md, "Where the fixed-rate tail came from").
//
// Request n is due at n / rate seconds from the start and is sent then, answered or not what came before
// (autocannon's overallRate instead sends each second's share at once when the second starts: a burst
// that measures queueing, not latency). Its time counts from when it was due, so a client or server
// falling behind shows in the percentiles instead of slowing the schedule (no coordinated omission).
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';
import { AnswerTally } from './answerCheck.ts';
import type { Exchange, LoadResult } from './load.ts';

/** What the worker is given: the run, and the exchange of every request it may send (n from 0). */
export interface OpenLoopJob {
  url: string;
  headers: Record<string, string>;
  connections: number;
  seconds: number;
  rate: number;
  exchanges: Exchange[];
  sameJson: boolean;
}

async function openLoop(job: OpenLoopJob): Promise<LoadResult> {
  const url = new URL(job.url);
  const pool = new Pool(url.origin, { connections: job.connections, pipelining: 1 });
  const headers = { 'content-type': 'application/json', ...job.headers };
  const latencies: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const answers = new AnswerTally(job.sameJson);
  let failures = 0;
  const send = async (exchange: Exchange, due: number) => {
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
      else answers.record(body, exchange.expected);
    } catch {
      failures++;
    }
  };
  const interval = 1000 / job.rate;
  const start = performance.now();
  const end = start + job.seconds * 1000;
  let sent = 0;
  for (;;) {
    const due = start + sent * interval;
    if (due >= end || sent >= job.exchanges.length) break;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const request = send(job.exchanges[sent++]!, due).finally(() => inFlight.delete(request));
    inFlight.add(request);
  }
  const seconds = (performance.now() - start) / 1000;
  await Promise.all(inFlight);
  await pool.close();
  return {
    requests: latencies.length,
    sent,
    seconds,
    mismatches: answers.mismatches,
    reordered: answers.reordered,
    failures,
    firstMismatch: answers.firstMismatch,
    latencies,
  };
}

parentPort!.postMessage(await openLoop(workerData as OpenLoopJob));
