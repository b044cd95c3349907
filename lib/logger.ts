import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Creates the structured JSON logger of one process; tokens and credentials are never written. */
export function createLogger(service: string, level = process.env['LOG_LEVEL'] ?? 'info'): Logger {
  return pino({
    level,
    base: { service },
    redact: {
      paths: [
        'authorization',
        '*.authorization',
        'headers.authorization',
        'req.headers.authorization',
        'token',
        '*.password',
      ],
      censor: '[redacted]',
    },
  });
}
