import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import { activeTraceId } from './telemetry.ts';

export type { Logger } from 'pino';

/** How log lines are written: one JSON object per line, or pino-pretty's human-readable form. */
export type LogFormat = 'json' | 'pretty';

// Credentials, and what callers send about their own users (event attributes, operation variables).
const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'token',
  '*.token',
  '*.password',
  'attributes',
  '*.attributes',
  'event.attributes',
  'events[*].attributes',
  '*.events[*].attributes',
  'payload',
  '*.payload',
  'variables',
  '*.variables',
];

/** Fields of the request being served (requestId, tenant, operationName), added to every line logged in it. */
export type LogFields = Record<string, string | undefined>;

const requestFields = new AsyncLocalStorage<LogFields>();

/** Runs fn with `fields` on every log line written inside it, however deep (async included). */
export function withLogFields<T>(fields: LogFields, fn: () => T): T {
  return requestFields.run(fields, fn);
}

/** Adds fields to the current request's log lines once they are known (tenant, operation name). */
export function addLogFields(fields: LogFields): void {
  const current = requestFields.getStore();
  if (current) Object.assign(current, fields);
}

/** pino-pretty as a synchronous destination, when it is installed (a dev dependency); else undefined. */
function prettyDestination(): DestinationStream | undefined {
  try {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (options: object) => DestinationStream;
    return pretty({
      colorize: process.stdout.isTTY === true,
      translateTime: 'HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
  } catch {
    return undefined;
  }
}

/**
 * Creates the structured logger of one process: JSON lines (pretty only when asked, or in development on a
 * terminal), each carrying the active span's `traceId` and the fields of the request it serves
 * (withLogFields, or child loggers): `requestId`, `tenant` and `operationName`. Tokens, credentials, event attributes and operation variables are never written.
 */
export function createLogger(
  service: string,
  level = process.env['LOG_LEVEL'] ?? 'info',
  format?: LogFormat,
  /** Where lines go (tests); default stdout. */
  destination?: DestinationStream,
): Logger {
  const wantsPretty =
    format === 'pretty' ||
    (format === undefined && process.stdout.isTTY === true && process.env['NODE_ENV'] !== 'production');
  const options = {
    level,
    base: { service },
    // The call's own fields win over these (pino merges them into one object).
    mixin: () => {
      const traceId = activeTraceId();
      const fields = requestFields.getStore();
      return traceId ? { ...fields, traceId } : { ...fields };
    },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  const out = destination ?? (wantsPretty ? prettyDestination() : undefined);
  return out ? pino(options, out) : pino(options);
}
