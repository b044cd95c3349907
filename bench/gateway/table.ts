// Aligned text tables for the gateway bench's output (first column left-aligned, the rest right-aligned).
import { med, type Phase } from './measure.ts';

/** Prints a title, a header row and rows of cells. */
export function printColumns(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  console.log(`\n${title}`);
  for (const row of [header, ...rows])
    console.log(row.map((cell, i) => (i ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  '));
}

/** A number with a fixed count of decimals, or "-" when it is not one. */
export function fixed(value: number, decimals = 1): string {
  return Number.isFinite(value) ? value.toFixed(decimals) : '-';
}

/** A whole number with thousands separators, or "-". */
export function whole(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en') : '-';
}

/** The sum of a count over phases. */
export const total = (phases: Phase[], field: 'requests' | 'mismatches' | 'failures') =>
  phases.reduce((sum, p) => sum + p[field], 0);

/** A fixed-rate table: each peer's medians over its phases at the rate offered. */
export function printFixedRate(title: string, peers: Array<[name: string, phases: Phase[]]>): void {
  printColumns(
    title,
    ['gateway', 'achieved req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU ms/req', 'bad', 'failed'],
    peers.map(([name, phases]) => [
      name,
      whole(med(phases, 'rps')),
      fixed(med(phases, 'p50')),
      fixed(med(phases, 'p95')),
      fixed(med(phases, 'p99')),
      fixed(med(phases, 'cpuMsPerRequest'), 2),
      whole(total(phases, 'mismatches')),
      whole(total(phases, 'failures')),
    ]),
  );
}
