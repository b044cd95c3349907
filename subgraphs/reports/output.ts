// Report output files: rows streamed to CSV or JSON on disk, never held in memory.
//
// Storage is plain files under DATA_DIR/reports/<tenant>/<generationId>.<csv|json>: the worker writes
// them, the gateway's download endpoint streams them. On several machines DATA_DIR/reports must be a
// volume that workers and gateways share (docker-compose mounts one volume, appdata, on both).
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReportDataRow } from './reportRows.ts';

/** Output formats of a generation. */
export type ReportFormat = 'CSV' | 'JSON';

/** Rows to write, as they come. */
type Rows = AsyncIterable<ReportDataRow> | Iterable<ReportDataRow>;

/** Raised when the output file cannot be written (disk full, no permission): a failure of the generation. */
export class ReportOutputError extends Error {
  override name = 'ReportOutputError';
}

/** What a finished output file holds. */
export interface ReportOutput {
  rowCount: number;
  byteCount: number;
  /** Relative to DATA_DIR/reports, as report_generations.file_path stores it. */
  filePath: string;
}

// Rows are joined into pieces of about this size before they reach the file stream.
const PIECE_CHARS = 64 * 1024;
// A temporary file of the same generation untouched this long belongs to a worker that died.
const STALE_TEMP_MS = 60_000;

/** The directory every report file lives under. */
export function reportsRoot(dataDir: string): string {
  return join(dataDir, 'reports');
}

/** The output file of a generation, relative to reportsRoot: `<tenant>/<generationId>.<csv|json>`. */
export function reportFilePath(tenant: string, generationId: string, format: ReportFormat): string {
  return `${tenant}/${generationId}.${format === 'CSV' ? 'csv' : 'json'}`;
}

/** Quotes one CSV field as RFC 4180 asks: only when it holds a comma, a quote or a line break. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** One CSV record, CRLF-terminated; null is an empty field. */
export function csvRecord(fields: ReadonlyArray<string | null>): string {
  return `${fields.map((field) => (field === null ? '' : csvField(field))).join(',')}\r\n`;
}

/** One row as a CSV record of `kpi,bucket,<dimensions...>,value`. */
function csvRow(dimensions: readonly string[], row: ReportDataRow): string {
  let line = `${csvField(row.kpi)},${row.bucket.toISOString()}`;
  for (const dimension of dimensions) {
    const value = row.dimensions[dimension];
    line += value === null || value === undefined ? ',' : `,${csvField(value)}`;
  }
  return `${line},${row.value === null ? '' : String(row.value)}\r\n`;
}

/** One row as an element of the JSON array. */
function jsonElement(row: ReportDataRow): string {
  return JSON.stringify({
    kpi: row.kpi,
    bucket: row.bucket.toISOString(),
    dimensions: row.dimensions,
    value: row.value,
  });
}

/**
 * The file's text in pieces of about PIECE_CHARS (few large writes rather than one per row): CSV with
 * a header `kpi,bucket,<dimensions...>,value`, or one JSON array with an element per line. Counts
 * the rows into `tally`, and notes there an error of the rows themselves (as opposed to the file).
 */
async function* reportText(
  format: ReportFormat,
  dimensions: readonly string[],
  rows: Rows,
  tally: { rows: number; sourceError?: unknown },
): AsyncGenerator<string> {
  let piece = format === 'CSV' ? csvRecord(['kpi', 'bucket', ...dimensions, 'value']) : '[';
  try {
    for await (const row of rows) {
      if (format === 'CSV') piece += csvRow(dimensions, row);
      else piece += `${tally.rows ? ',' : ''}\n${jsonElement(row)}`;
      tally.rows += 1;
      if (piece.length >= PIECE_CHARS) {
        yield piece;
        piece = '';
      }
    }
  } catch (error) {
    tally.sourceError = error;
    throw error;
  }
  if (format === 'JSON') piece += tally.rows ? '\n]\n' : ']\n';
  yield piece;
}

/**
 * Writes the rows of a generation to its output file and returns what it holds. The file appears
 * whole or not at all: it is written to a temporary file, flushed, then renamed over the final name,
 * so a rerun after a crash replaces it rather than adding to it. The stream honours backpressure: rows
 * are pulled only as fast as the disk takes them. Errors of the rows themselves pass through as they
 * are; errors of the file become ReportOutputError. An aborted signal stops the write and removes the
 * temporary file.
 */
export async function writeReportFile(options: {
  dataDir: string;
  tenant: string;
  generationId: string;
  format: ReportFormat;
  dimensions: readonly string[];
  rows: Rows;
  signal?: AbortSignal;
}): Promise<ReportOutput> {
  const filePath = reportFilePath(options.tenant, options.generationId, options.format);
  const target = join(reportsRoot(options.dataDir), filePath);
  const directory = join(reportsRoot(options.dataDir), options.tenant);
  const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
  const tally: { rows: number; sourceError?: unknown } = { rows: 0 };
  const text = reportText(options.format, options.dimensions, options.rows, tally);
  try {
    await mkdir(directory, { recursive: true });
    await removeStaleTemps(directory, options.generationId);
    // flush: the data reaches the disk before the rename makes the file visible.
    await pipeline(Readable.from(text), createWriteStream(temp, { flush: true }), {
      signal: options.signal,
    });
    const { size } = await stat(temp);
    await rename(temp, target);
    return { rowCount: tally.rows, byteCount: size, filePath };
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    if (error === tally.sourceError || options.signal?.aborted) throw error;
    throw new ReportOutputError(`could not write the report file ${filePath}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Removes temporary files of this generation left by a worker that was killed while writing them. */
async function removeStaleTemps(directory: string, generationId: string): Promise<void> {
  const names = (await readdir(directory)).filter(
    (n) => n.startsWith(`${generationId}.`) && n.endsWith('.tmp'),
  );
  for (const name of names) {
    const path = join(directory, name);
    const info = await stat(path).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_TEMP_MS) await rm(path, { force: true });
  }
}
