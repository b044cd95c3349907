// Tracing (issue #9): one trace from a client's requests through the gateway's plan fetches into the
// subgraphs and Postgres, and from ingestEvents through JetStream (trace context in NATS headers) to the
// writer and the KPI calculator. The in-process platform shares one tracer provider, so an in-memory
// exporter sees every span of every service.
import { randomBytes } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTR_COMPONENT, ATTR_OPERATION, ATTR_TENANT, recordSpansInMemory } from '../lib/telemetry.ts';
import { startTestPlatform, type GraphQLBody, type TestPlatform } from './support/platform.ts';
import { wsClient, wsSubscribe } from './support/subscribers.ts';

// Installed before any service starts: every span of this process lands here.
const exporter = recordSpansInMemory();

const QUERY = 'query KpisWithInsights { kpis { code current { value } insights { id } } }';
const KPI_UPDATED = 'subscription { kpiUpdated(codes: ["orders"]) { value kpi { name } } }';
const INGEST = `mutation Ingest($events: [EventInput!]!) { ingestEvents(events: $events) { accepted } }`;

let platform: TestPlatform;
let admin: string;

/** POSTs an operation to the gateway as part of the caller's trace (its W3C traceparent header). */
async function tracedRequest(
  traceparent: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GraphQLBody> {
  const response = await fetch(platform.gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}`, traceparent },
    body: JSON.stringify({ query, variables }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as GraphQLBody;
}

const spansOf = (traceId: string) =>
  exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
const componentsOf = (spans: ReadableSpan[]) =>
  new Set(spans.map((span) => span.attributes[ATTR_COMPONENT]).filter(Boolean));

/** Waits until the trace's spans include every named component (spans end after responses are sent). */
async function traceWith(traceId: string, components: string[], timeoutMs = 20_000): Promise<ReadableSpan[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = spansOf(traceId);
    const seen = componentsOf(spans);
    if (components.every((c) => seen.has(c))) return spans;
    if (Date.now() > deadline)
      throw new Error(
        `trace ${traceId} has components [${[...seen].join(', ')}], expected [${components.join(', ')}]`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Polls until find returns something (spans end asynchronously). */
async function eventually<T>(find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('not found in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  platform = await startTestPlatform({ workers: true });
  admin = await platform.token('acme', ['admin']);
  const { body } = await platform.graphql(
    `mutation { defineKpi(input: {code: "orders", name: "Orders", eventName: "order.placed", aggregation: COUNT}) { code } }`,
    { token: admin },
  );
  expect(body.errors).toBeUndefined();
});

afterAll(async () => {
  await platform?.stop();
});

describe('one trace across the platform', () => {
  it('follows a query and an ingest through the gateway, subgraphs, Postgres, JetStream, writer, calculator and a subscription', async () => {
    // The test is the client: both requests carry the same trace, as a dashboard's user action would.
    const traceId = randomBytes(16).toString('hex');
    const clientSpanId = randomBytes(8).toString('hex');
    const traceparent = `00-${traceId}-${clientSpanId}-01`;

    const client = wsClient(platform.gatewayUrl, admin);
    const live = wsSubscribe<{ value: number | null }>(client, KPI_UPDATED, {}, 'kpiUpdated');
    await live.until(1); // the current value: subscribed before the ingest

    const read = await tracedRequest(traceparent, QUERY);
    expect(read.errors).toBeUndefined();
    expect(read.data).toEqual({
      kpis: [{ code: 'orders', current: expect.anything() as unknown, insights: [] }],
    });
    const ingest = await tracedRequest(traceparent, INGEST, {
      events: [
        {
          type: 'BUSINESS_EVENT',
          name: 'order.placed',
          source: 'web',
          timestamp: new Date().toISOString(),
          attributes: { amount: 12.5 },
        },
      ],
    });
    expect(ingest.data).toEqual({ ingestEvents: { accepted: 1 } });

    const spans = await traceWith(traceId, [
      'gateway',
      'metadata',
      'metrics',
      'insights',
      'postgres',
      'jetstream',
      'writer',
      'calculator',
    ]);
    await live.until(2);
    await client.dispose();
    const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
    const ancestors = (span: ReadableSpan) => {
      const byId = new Map(spansOf(traceId).map((s) => [s.spanContext().spanId, s]));
      const chain: ReadableSpan[] = [];
      for (let parent = byId.get(parentOf(span) ?? ''); parent; parent = byId.get(parentOf(parent) ?? ''))
        chain.push(parent);
      return chain;
    };
    // One tree: every span hangs, through spans of this trace, from the client's span.
    for (const span of spans) {
      const root = ancestors(span).at(-1) ?? span;
      expect(parentOf(root), `${span.name} is not under the client's span`).toBe(clientSpanId);
    }

    // The query: a gateway SERVER span named after the operation, fetching from the subgraphs it planned.
    const request = spans.find((s) => s.name === 'graphql query KpisWithInsights')!;
    expect(request.kind).toBe(SpanKind.SERVER);
    expect(request.attributes[ATTR_OPERATION]).toBe('KpisWithInsights');
    expect(request.attributes[ATTR_TENANT]).toBe('acme');
    const underQuery = spans.filter((s) => ancestors(s).includes(request));
    const fetched = underQuery.filter((s) => s.name.startsWith('subgraph fetch ')).map((s) => s.name);
    expect(new Set(fetched)).toEqual(
      new Set(['subgraph fetch metadata', 'subgraph fetch metrics', 'subgraph fetch insights']),
    );
    for (const subgraph of ['metadata', 'metrics', 'insights']) {
      const served = underQuery.find((s) => s.attributes[ATTR_COMPONENT] === subgraph)!;
      expect(served.kind).toBe(SpanKind.SERVER);
      expect(served.attributes[ATTR_TENANT]).toBe('acme');
      expect(ancestors(served)[0]?.name).toBe(`subgraph fetch ${subgraph}`);
      // Each subgraph read Postgres inside its request.
      const reads = underQuery.filter(
        (s) => s.attributes[ATTR_COMPONENT] === 'postgres' && ancestors(s).includes(served),
      );
      expect(reads.length, `${subgraph} has no Postgres span`).toBeGreaterThan(0);
    }

    // The ingest: gateway -> metrics subgraph -> JetStream publish -> writer consume -> Postgres -> calculator.
    const mutation = spans.find((s) => s.name === 'graphql mutation Ingest')!;
    const publish = spans.find((s) => s.name === 'jetstream publish' && ancestors(s).includes(mutation))!;
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.attributes['messaging.destination.name']).toBe('events.acme.order.placed');
    const consume = spans.find((s) => s.name === 'jetstream consume writer')!;
    expect(consume.kind).toBe(SpanKind.CONSUMER);
    expect(parentOf(consume)).toBe(publish.spanContext().spanId);
    const store = spans.find((s) => s.name === 'writer store events')!;
    expect(parentOf(store)).toBe(consume.spanContext().spanId);
    expect(
      spans.some(
        (s) => s.attributes[ATTR_COMPONENT] === 'postgres' && parentOf(s) === store.spanContext().spanId,
      ),
    ).toBe(true);
    const calculation = spans.find((s) => s.name === 'calculator publish kpi values')!;
    expect(ancestors(calculation)).toContain(consume);

    // The delivery: the gateway's subscription continues the calculator's trace from the KPI message's
    // headers, and fetches the KPI's name from the metadata subgraph inside it.
    const delivery = await eventually(() =>
      spansOf(traceId).find((s) => s.name === 'subscription deliver kpiUpdated'),
    );
    expect(delivery.kind).toBe(SpanKind.CONSUMER);
    expect(ancestors(delivery).map((s) => s.name)).toContain('calculator publish kpi values');
    const entityFetch = spansOf(traceId).find(
      (s) => s.name === 'subgraph fetch metadata' && parentOf(s) === delivery.spanContext().spanId,
    );
    expect(entityFetch, 'no entity fetch inside the delivery').toBeDefined();
    console.info(`one trace: ${spans.length} spans, ${componentsOf(spans).size} components`);
  });

  it('shows a batch of subgraph fetches as one span, linked to every fetch it carries', async () => {
    const traceId = randomBytes(16).toString('hex');
    const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
    // Two lists of the same KPIs: their two `current` fetches to the metrics subgraph leave in one wave.
    const read = await tracedRequest(
      traceparent,
      'query TwoLists { a: kpis { code current { value } } b: kpis { code current { value } } }',
    );
    expect(read.errors).toBeUndefined();
    await traceWith(traceId, ['gateway', 'metrics']);
    const batch = await eventually(() => spansOf(traceId).find((s) => s.name === 'subgraph batch metrics'));
    expect(batch.kind).toBe(SpanKind.CLIENT);
    expect(batch.attributes['graphql.batch.operation_count']).toBe(2);
    const fetches = spansOf(traceId).filter((s) => s.name === 'subgraph fetch metrics');
    expect(fetches).toHaveLength(2);
    const ids = fetches.map((s) => s.spanContext().spanId);
    // A child of one fetch, linked to the other: both fetches lead to the one request that carried them.
    const parent = batch.parentSpanContext?.spanId;
    expect(ids).toContain(parent);
    expect(batch.links.map((link) => link.context.spanId)).toEqual(ids.filter((id) => id !== parent));
    // The metrics subgraph served the batch under its span.
    const served = spansOf(traceId).filter(
      (s) => s.attributes[ATTR_COMPONENT] === 'metrics' && s.kind === SpanKind.SERVER,
    );
    expect(served.map((s) => s.parentSpanContext?.spanId)).toEqual([batch.spanContext().spanId]);
  });
});
