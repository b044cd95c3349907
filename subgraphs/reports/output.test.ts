// Report output files: RFC 4180 CSV and a JSON array, streamed to disk and renamed into place whole.
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvField, csvRecord, ReportOutputError, writeReportFile } from './output.ts';
import type { ReportDataRow } from './reportRows.ts';

let dataDir: string;
const GENERATION = '0b7e1d1c-6a53-4c8f-9a43-2d3f0f6e9a11';
const T0 = Date.UTC(2026, 10, 23, 10, 0);

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'pulsegraph-output-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** Many rows, made as they are asked for. */
function* manyRows(n: number): Generator<ReportDataRow> {
  for (let i = 0; i < n; i++) {
    yield {
      kpi: 'orders',
      bucket: new Date(T0 + i * 60_000),
      dimensions: { country: ['DE', 'FR', 'NL'][i % 3]! },
      value: i % 7 === 0 ? null : i / 4,
    };
  }
}

/** A strict RFC 4180 parser (CRLF records, quoted fields with doubled quotes): what a spreadsheet reads. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] === '"') {
      i += 1;
      for (;;) {
        const quote = text.indexOf('"', i);
        if (quote < 0) throw new Error('unterminated quoted field');
        field += text.slice(i, quote);
        i = quote + 1;
        if (text[i] !== '"') break;
        field += '"';
        i += 1;
      }
    }
    const next = text.slice(i).search(/,|\r\n/);
    if (next < 0) throw new Error('record without CRLF at the end');
    field += text.slice(i, i + next);
    if (/["\r\n]/.test(text.slice(i, i + next))) throw new Error(`bare quote or line break at ${i}`);
    i += next;
    record.push(field);
    field = '';
    if (text[i] === ',') {
      i += 1;
    } else {
      records.push(record);
      record = [];
      i += 2;
    }
  }
  return records;
}

const write = (format: 'CSV' | 'JSON', rows: Iterable<ReportDataRow>, dimensions = ['country']) =>
  writeReportFile({ dataDir, tenant: 'acme', generationId: GENERATION, format, dimensions, rows });

describe('CSV output', () => {
  it('quotes exactly the fields that hold a comma, a quote or a line break', () => {
    expect(csvField('plain text')).toBe('plain text');
    expect(csvField('')).toBe('');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvRecord(['x', null, '1'])).toBe('x,,1\r\n');
  });

  it('writes a header and rows that an RFC 4180 reader gives back unchanged', async () => {
    const tricky = ['a,b', 'say "hi"', 'two\r\nlines', ' spaced ', 'Zürich', '=1+1', null];
    const rows: ReportDataRow[] = tricky.map((country, i) => ({
      kpi: 'revenue',
      bucket: new Date(T0 + i * 3_600_000),
      dimensions: { country, 'plan,tier': i % 2 ? 'pro' : null },
      value: i === 2 ? null : i * 10.25,
    }));
    const output = await write('CSV', rows, ['country', 'plan,tier']);
    expect(output).toMatchObject({ rowCount: rows.length, filePath: `acme/${GENERATION}.csv` });
    const text = await readFile(join(dataDir, 'reports', output.filePath), 'utf8');
    expect(Buffer.byteLength(text)).toBe(output.byteCount);
    expect(parseCsv(text)).toEqual([
      ['kpi', 'bucket', 'country', 'plan,tier', 'value'],
      ...rows.map((row) => [
        'revenue',
        row.bucket.toISOString(),
        row.dimensions['country'] ?? '',
        row.dimensions['plan,tier'] ?? '',
        row.value === null ? '' : String(row.value),
      ]),
    ]);
  });

  it('streams a large report into one file and replaces it whole when rerun', async () => {
    const first = await write('CSV', manyRows(120_000));
    const again = await write('CSV', manyRows(120_000));
    expect(again).toEqual(first);
    const records = parseCsv(await readFile(join(dataDir, 'reports', first.filePath), 'utf8'));
    expect(records).toHaveLength(120_001);
    expect(records[1]).toEqual(['orders', new Date(T0).toISOString(), 'DE', '']);
    expect(records.at(-1)).toEqual([
      'orders',
      new Date(T0 + 119_999 * 60_000).toISOString(),
      'NL',
      '29999.75',
    ]);
  });
});

describe('JSON output', () => {
  it('writes one valid JSON array, element by element', async () => {
    const output = await write('JSON', manyRows(50_000));
    const text = await readFile(join(dataDir, 'reports', output.filePath), 'utf8');
    expect(output).toMatchObject({ rowCount: 50_000, byteCount: Buffer.byteLength(text) });
    const parsed = JSON.parse(text) as Array<Record<string, unknown>>;
    expect(parsed).toHaveLength(50_000);
    expect(parsed[1]).toEqual({
      kpi: 'orders',
      bucket: new Date(T0 + 60_000).toISOString(),
      dimensions: { country: 'FR' },
      value: 0.25,
    });
    expect(parsed[0]!['value']).toBeNull();
  });

  it('writes [] for a report without rows', async () => {
    const output = await write('JSON', []);
    expect(JSON.parse(await readFile(join(dataDir, 'reports', output.filePath), 'utf8'))).toEqual([]);
    expect(output.rowCount).toBe(0);
  });
});

describe('a failed write', () => {
  it('passes the rows error through and leaves neither a partial file nor a temporary one', async () => {
    const generationId = '5d1f3c1e-0000-4000-8000-000000000001';
    function* failing(): Generator<ReportDataRow> {
      yield* manyRows(30_000);
      throw new Error('rollups unreachable');
    }
    const attempt = writeReportFile({
      dataDir,
      tenant: 'acme',
      generationId,
      format: 'CSV',
      dimensions: ['country'],
      rows: failing(),
    });
    await expect(attempt).rejects.toThrow('rollups unreachable');
    const left = await readdir(join(dataDir, 'reports', 'acme'));
    expect(left.filter((name) => name.startsWith(generationId))).toEqual([]);
  });

  it('reports a disk error as ReportOutputError', async () => {
    // The tenant's directory is a file: nothing can be written under it.
    const blocked = await mkdtemp(join(tmpdir(), 'pulsegraph-output-blocked-'));
    await writeFile(join(blocked, 'reports'), 'not a directory');
    const attempt = writeReportFile({
      dataDir: blocked,
      tenant: 'acme',
      generationId: GENERATION,
      format: 'JSON',
      dimensions: [],
      rows: manyRows(10),
    });
    await expect(attempt).rejects.toBeInstanceOf(ReportOutputError);
    await rm(blocked, { recursive: true, force: true });
  });

  it('removes the temporary files a killed worker left for the same generation', async () => {
    const directory = join(dataDir, 'reports', 'acme');
    const stale = join(directory, `${GENERATION}.csv.deadbeef0000.tmp`);
    const fresh = join(directory, `${GENERATION}.csv.0123456789ab.tmp`);
    await writeFile(stale, 'half a report');
    await writeFile(fresh, 'another worker, still writing');
    const longAgo = new Date(Date.now() - 10 * 60_000);
    await utimes(stale, longAgo, longAgo);
    await write('CSV', manyRows(5));
    const names = await readdir(directory);
    expect(names).not.toContain(`${GENERATION}.csv.deadbeef0000.tmp`);
    expect(names).toContain(`${GENERATION}.csv.0123456789ab.tmp`);
    await rm(fresh);
  });
});
