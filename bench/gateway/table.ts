// Aligned text tables for the gateway bench's output (first column left-aligned, the rest right-aligned).

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
