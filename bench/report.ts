/** The median of some measurements. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Prints rows of (what, events or requests per second, ratio to the baseline) as an aligned table. */
export function printTable(title: string, rows: Array<[string, number, number]>): void {
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`\n${title}`);
  console.log(`${'case'.padEnd(width)}  ${'per second'.padStart(12)}  ${'ratio'.padStart(7)}`);
  for (const [name, rate, ratio] of rows) {
    console.log(
      `${name.padEnd(width)}  ${Math.round(rate).toLocaleString('en').padStart(12)}  ${ratio.toFixed(2).padStart(7)}`,
    );
  }
}

/** Prints one target of issue #10, met or missed, with the figure it was judged on in `what`. */
export function printTarget(what: string, met: boolean): void {
  console.log(`target ${met ? 'met   ' : 'MISSED'} ${what}`);
}
