// OpenTelemetry tracing of every process: one tracer provider per process, exporting over OTLP/HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT is set and recording nothing otherwise. Spans are made by hand at our own
// choke points (gateway request, plan fetch, subgraph request, Postgres transaction, JetStream publish and
// consume, writer, calculator, subscription delivery): auto-instrumentation does not hook ESM-imported CJS
// packages under Node's native TypeScript. W3C trace context travels in HTTP and NATS headers alike.
import {
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export { SpanKind, type Context, type Span } from '@opentelemetry/api';

/** Span attribute naming the platform component that made a span (processes may share one, in tests). */
export const ATTR_COMPONENT = 'pulsegraph.component';
/** Span attribute carrying the caller's tenant. */
export const ATTR_TENANT = 'pulsegraph.tenant';
/** Span attribute carrying the GraphQL operation name (semantic conventions' graphql.operation.name). */
export const ATTR_OPERATION = 'graphql.operation.name';

/** The platform's tracer: a proxy, so spans made before the provider starts still reach it once it does. */
export const tracer = trace.getTracer('pulsegraph');

let provider: TracerProvider | undefined;
const NON_RECORDING = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
let propagationReady = false;

/** Context manager and W3C propagator: needed even without a provider, to pass incoming context on. */
function ensurePropagation(): void {
  if (propagationReady) return;
  propagationReady = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

function installProvider(service: string, processor: SpanProcessor): void {
  ensurePropagation();
  provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: `pulsegraph-${service}` }),
    spanProcessors: [processor],
  });
  trace.setGlobalTracerProvider(provider);
}

/**
 * Starts tracing for this process, once: spans are batched to `${endpoint}/v1/traces` (OTLP/HTTP) when an
 * endpoint is given, and are no-ops otherwise (trace context is still passed on). Later calls do nothing.
 */
export async function startTelemetry(service: string, endpoint: string | undefined): Promise<void> {
  ensurePropagation();
  if (provider || !endpoint) return;
  // Loaded only when used: it is a good part of a process's start-up time otherwise.
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  if (provider) return;
  const url = `${endpoint.replace(/\/+$/, '')}/v1/traces`;
  installProvider(service, new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url }) }));
}

/**
 * Records every span of this process in memory (tests): call before anything starts. Returns the exporter,
 * whose getFinishedSpans() lists the spans ended so far. Throws if a provider is already installed.
 */
export function recordSpansInMemory(): InMemorySpanExporter {
  if (provider) throw new Error('a tracer provider is already installed in this process');
  const exporter = new InMemorySpanExporter();
  installProvider('test', new SimpleSpanProcessor({ exporter }));
  return exporter;
}

/** Flushes and stops the provider (on shutdown), so the last spans are exported. */
export async function stopTelemetry(): Promise<void> {
  await provider?.shutdown();
}

/** Options of a span made by withSpan. */
export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent (e.g. extracted from a message); default: the active span. */
  parent?: Context;
  links?: Link[];
}

/**
 * Runs fn inside a new active span and ends it when fn settles; a throw is recorded on the span (status
 * ERROR) and rethrown.
 */
export function withSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  // Without a provider every span is a no-op: fn runs in the active context (which trace context
  // propagation reads) with the active span, skipping a span object and a context switch per call.
  if (!provider && !options.parent) return fn(trace.getActiveSpan() ?? NON_RECORDING);
  const parent = options.parent ?? context.active();
  return tracer.startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes, links: options.links },
    parent,
    async (span) => {
      try {
        return await fn(span);
      } catch (error) {
        failSpan(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** Marks a span failed with the error. */
export function failSpan(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : undefined });
}

/** Writes the active (or given) context as W3C `traceparent`/`tracestate` through `set`. */
export function injectTraceContext(set: (key: string, value: string) => void, from = context.active()): void {
  const carrier: Record<string, string> = {};
  propagation.inject(from, carrier);
  for (const [key, value] of Object.entries(carrier)) set(key, value);
}

/** Reads W3C trace context through `get` (HTTP or NATS headers); the root context when there is none. */
export function extractTraceContext(get: (key: string) => string | undefined | null): Context {
  return propagation.extract(ROOT_CONTEXT, undefined, {
    keys: () => ['traceparent', 'tracestate'],
    get: (_carrier, key) => get(key) ?? undefined,
  });
}

/** The trace id of the active span, for log lines; undefined outside any sampled span. */
export function activeTraceId(): string | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && trace.isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

/** The active trace context, to carry past a point where the code that continues runs elsewhere (a batch). */
export const activeContext = (): Context => context.active();

/** A link to the span of a context (for batch consumers), or undefined when it has none. */
export function linkTo(ctx: Context): Link | undefined {
  const spanContext = trace.getSpanContext(ctx);
  return spanContext && trace.isSpanContextValid(spanContext) ? { context: spanContext } : undefined;
}

/**
 * Runs a Node HTTP handler inside a SERVER span that continues the caller's trace (its `traceparent`
 * header) and ends when the response is done; every span the handler makes is its child.
 */
export function traceHttpRequest(
  component: string,
  req: IncomingMessage,
  res: ServerResponse,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): void {
  const parent = extractTraceContext((key) => {
    const value = req.headers[key];
    return Array.isArray(value) ? value[0] : value;
  });
  const path = req.url?.split('?')[0] ?? '/';
  const span = tracer.startSpan(
    `${component} ${req.method ?? 'GET'} ${path}`,
    {
      kind: SpanKind.SERVER,
      attributes: { [ATTR_COMPONENT]: component, 'http.request.method': req.method, 'url.path': path },
    },
    parent,
  );
  res.once('close', () => {
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  context.with(trace.setSpan(parent, span), () => handler(req, res));
}
