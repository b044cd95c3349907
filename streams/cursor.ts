/**
 * Cursors of the KPI stream: an opaque string for clients, a stream sequence inside. A client passes
 * the cursor of the last value it saw to kpiUpdated(after:) and resumes with the next one.
 */

/** Encodes a KPI stream sequence as a cursor. */
export function encodeCursor(seq: number): string {
  return Buffer.from(`kpi:${seq}`).toString('base64url');
}

/** Decodes a cursor back to its stream sequence; undefined when it is not one of ours. */
export function decodeCursor(cursor: string): number | undefined {
  const match = /^kpi:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match ? Number(match[1]) : undefined;
}
