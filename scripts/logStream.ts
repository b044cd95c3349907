import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { styleText } from 'node:util';
import { prettyFactory } from 'pino-pretty';

/** One readable stream of many services' output: every line prefixed with its service's name. */
export interface LogStream {
  /** Copies a child's stdout or stderr under the service's name, line by line. */
  pipe(service: string, source: Readable): void;
  /** Writes text (pino JSON lines or plain lines) under the service's name. */
  write(service: string, text: string): void;
}

/** Options of createLogStream. */
export interface LogStreamOptions {
  out?: NodeJS.WritableStream;
  /** ANSI colours; usually whether `out` is a terminal. */
  colorize?: boolean;
  /** Width the service names are padded to. */
  width?: number;
}

type Colour = 'cyan' | 'magenta' | 'yellow' | 'green' | 'blue' | 'red' | 'white';
const palette: Colour[] = ['cyan', 'magenta', 'yellow', 'green', 'blue', 'red'];

/** Formats pino JSON with pino-pretty and passes other lines through, each under `name  | `. */
export function createLogStream(options: LogStreamOptions = {}): LogStream {
  const out = options.out ?? process.stdout;
  const colorize = options.colorize ?? false;
  const width = options.width ?? 9;
  const pretty = prettyFactory({ colorize, ignore: 'pid,hostname,service', translateTime: 'HH:MM:ss.l' });
  const prefixes = new Map<string, string>();

  const prefixOf = (service: string) => {
    let prefix = prefixes.get(service);
    if (prefix === undefined) {
      const colour = service === 'start' ? 'white' : (palette[prefixes.size % palette.length] ?? 'white');
      const label = `${service.padEnd(width)} | `;
      prefix = colorize ? styleText(['bold', colour], label, { validateStream: false }) : label;
      prefixes.set(service, prefix);
    }
    return prefix;
  };

  const writeLine = (service: string, line: string) => {
    if (!line.trim()) return;
    const record = parsePinoRecord(line);
    const text = record ? pretty(record).replace(/\r?\n$/, '') : line;
    const prefix = prefixOf(service);
    out.write(
      `${text
        .split('\n')
        .map((part) => prefix + part)
        .join('\n')}\n`,
    );
  };

  return {
    pipe(service, source) {
      createInterface({ input: source, crlfDelay: Infinity }).on('line', (line) => writeLine(service, line));
    },
    write(service, text) {
      for (const line of text.split('\n')) writeLine(service, line);
    },
  };
}

// A pino record is a JSON object with a numeric level; anything else is shown as written.
function parsePinoRecord(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    const isRecord = typeof value === 'object' && value !== null && !Array.isArray(value);
    return isRecord && typeof (value as { level?: unknown }).level === 'number'
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
