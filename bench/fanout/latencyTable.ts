// The fan-out bench's table: per phase, how complete the deliveries were and how long they took.
import { median } from '../report.ts';
import type { PhaseResult } from './phase.ts';

/** One row of the table: a phase, or the median of several. */
export interface LatencyRow {
  name: string;
  subscribers: number;
  updates: number;
  /** Values received / (subscribers × updates). */
  completeness: number;
  p50: number;
  p99: number;
  max: number;
  cpuMsPerUpdate: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;

/** The row of one phase, or of several (median of their percentiles, completeness over all of them). */
export function latencyRow(name: string, runs: PhaseResult[]): LatencyRow {
  const sorted = runs.map((run) => [...run.latencies].sort((a, b) => a - b));
  const received = runs.reduce((sum, run) => sum + run.latencies.length, 0);
  const expected = runs.reduce((sum, run) => sum + run.subscribers * run.updates, 0);
  return {
    name,
    subscribers: runs[0]!.subscribers,
    updates: runs[0]!.updates,
    completeness: received / expected,
    p50: median(sorted.map((s) => percentile(s, 0.5))),
    p99: median(sorted.map((s) => percentile(s, 0.99))),
    max: median(sorted.map((s) => s.at(-1) ?? NaN)),
    cpuMsPerUpdate: median(runs.map((run) => run.cpuMsPerUpdate)),
  };
}

/** Prints the rows as an aligned table. */
export function printLatencyTable(title: string, rows: LatencyRow[]): void {
  const header = [
    'phase',
    'subscribers',
    'updates',
    'complete',
    'p50 ms',
    'p99 ms',
    'max ms',
    'CPU ms/update',
  ];
  const cells = rows.map((row) => [
    row.name,
    row.subscribers.toLocaleString('en'),
    String(row.updates),
    row.completeness.toFixed(4),
    ...[row.p50, row.p99, row.max, row.cpuMsPerUpdate].map((n) => n.toFixed(1)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  console.log(`\n${title}`);
  for (const line of [header, ...cells])
    console.log(line.map((c, i) => (i ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '));
}
