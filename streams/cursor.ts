/**
 * Cursors of the streams a subscription can resume on: an opaque string for clients, a stream name
 * and a sequence inside. A client passes the cursor of the last value it saw (kpiUpdated(after:), or
 * SSE's Last-Event-ID) and resumes with the next one.
 */
import { Stream, type StreamName } from './subjects.ts';

const STREAMS = new Map(Object.values(Stream).map((name) => [name.toLowerCase(), name]));

/** Encodes a stream sequence as a cursor (the KPI stream unless said otherwise). */
export function encodeCursor(seq: number, stream: StreamName = Stream.KPI): string {
  return Buffer.from(`${stream.toLowerCase()}:${seq}`).toString('base64url');
}

/** Decodes a cursor of `stream` back to its sequence; undefined when it is not one of that stream's. */
export function decodeCursor(cursor: string, stream: StreamName = Stream.KPI): number | undefined {
  const match = /^([a-z]{1,20}):(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match || STREAMS.get(match[1]!) !== stream) return undefined;
  return Number(match[2]);
}
