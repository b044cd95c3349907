// Log lines (issue #9): JSON with the request's fields and trace id on every line, and nothing secret.
import { context } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { addLogFields, createLogger, withLogFields } from './logger.ts';
import { extractTraceContext, startTelemetry } from './telemetry.ts';

// No exporter: trace context is still carried, so lines name the caller's trace.
await startTelemetry('test', undefined);

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('gateway', 'info', 'json', {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { logger, lines };
}

describe('logger', () => {
  it('writes the request id, tenant, operation name and trace id on every line of a request', () => {
    const { logger, lines } = capture();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const caller = extractTraceContext((key) =>
      key === 'traceparent' ? `00-${traceId}-00f067aa0ba902b7-01` : undefined,
    );
    context.with(caller, () =>
      withLogFields({ requestId: 'req-1' }, () => {
        logger.info('parsed');
        addLogFields({ tenant: 'acme', operationName: 'KpiList' });
        logger.child({ subgraph: 'metadata' }).warn('slow fetch');
      }),
    );
    logger.info('outside any request');
    expect(lines[0]).toMatchObject({ service: 'gateway', requestId: 'req-1', traceId, msg: 'parsed' });
    expect(lines[1]).toMatchObject({ requestId: 'req-1', tenant: 'acme', operationName: 'KpiList', traceId });
    expect(lines[2]).not.toHaveProperty('requestId');
    expect(lines[2]).not.toHaveProperty('traceId');
  });

  it('never writes tokens, event attributes or operation variables', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        authorization: 'Bearer secret-token',
        headers: { authorization: 'Bearer secret-token' },
        token: 'secret-token',
        event: { name: 'order.placed', attributes: { email: 'a@example.com' } },
        events: [{ attributes: { email: 'a@example.com' } }],
        body: { variables: { events: [{ attributes: { email: 'a@example.com' } }] } },
      },
      'request',
    );
    const text = JSON.stringify(lines);
    expect(text).not.toContain('secret-token');
    expect(text).not.toContain('a@example.com');
    expect(lines[0]).toMatchObject({ event: { name: 'order.placed', attributes: '[redacted]' } });
  });
});
