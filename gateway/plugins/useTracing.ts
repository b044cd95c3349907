import { context, trace } from '@opentelemetry/api';
import { getOperationAST, type ExecutionArgs } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import {
  ATTR_COMPONENT,
  ATTR_OPERATION,
  ATTR_TENANT,
  extractTraceContext,
  failSpan,
  SpanKind,
  tracer,
} from '../../lib/telemetry.ts';
import { addLogFields, withLogFields } from '../../lib/logger.ts';
import type { GatewayContext } from './useAuth.ts';

/**
 * One SERVER span per GraphQL request over HTTP (`graphql <type> <operation>`), continuing the caller's W3C
 * `traceparent` when it sends one, and active while the request runs: every plan fetch below it becomes a
 * child span and carries the trace on to the subgraphs. Named after the operation once it is parsed, with
 * the tenant and operation name as attributes; the same fields, and the request id, go on every log line
 * written while the request runs.
 */
export function useTracing(): Plugin<GatewayContext> {
  return {
    instrumentation: {
      request({ request }, wrapped) {
        const parent = extractTraceContext((key) => request.headers.get(key));
        const span = tracer.startSpan(
          'graphql request',
          {
            kind: SpanKind.SERVER,
            attributes: { [ATTR_COMPONENT]: 'gateway', 'http.request.method': request.method },
          },
          parent,
        );
        const ended = () => span.end();
        try {
          const fields = { requestId: request.headers.get('x-request-id') ?? undefined };
          const result = withLogFields(fields, () => context.with(trace.setSpan(parent, span), wrapped));
          if (result instanceof Promise) {
            return result.then(ended, (error: unknown) => {
              failSpan(span, error);
              ended();
              throw error;
            });
          }
          ended();
          return result;
        } catch (error) {
          failSpan(span, error);
          ended();
          throw error;
        }
      },
    },
    onExecute({ args }) {
      const { document, operationName, contextValue } = args as ExecutionArgs & {
        contextValue: GatewayContext;
      };
      const operation = getOperationAST(document, operationName);
      const name = operation?.name?.value ?? 'anonymous';
      const tenant = contextValue.principal?.tenant;
      addLogFields({ operationName: name, tenant });
      const span = trace.getActiveSpan();
      if (!span) return;
      span.updateName(`graphql ${operation?.operation ?? 'operation'} ${name}`);
      span.setAttribute(ATTR_OPERATION, name);
      if (operation) span.setAttribute('graphql.operation.type', operation.operation);
      if (tenant) span.setAttribute(ATTR_TENANT, tenant);
    },
  };
}
