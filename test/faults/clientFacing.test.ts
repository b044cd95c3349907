// What a client sees during faults: a batch resent after a client-side timeout is stored once; a query
// that loses one subgraph (SIGKILLed) answers at once with partial data and SERVICE_UNAVAILABLE, the
// gateway's circuit to that subgraph opens, and closes again once the subgraph is back.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answers200, freePort, pollUntil } from '../../scripts/network.ts';
import {
  startGatewayProcess,
  startServiceProcess,
  type GatewayProcess,
  type ServiceProcess,
} from '../support/processes.ts';
import {
  defineKpis,
  expectStoredExactlyOnce,
  leakedPids,
  Producer,
  startFaultPlatform,
  type FaultPlatform,
} from './faultPlatform.ts';

const TENANT = 'clients';
const TIMEOUT_MS = 10_000;
const INGEST = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted duplicates } }`;
let fault: FaultPlatform;
let metricsPort: number;
let metrics: ServiceProcess;
let gateway: GatewayProcess;

const startMetricsProcess = () => {
  const service = startServiceProcess(fault.platform, 'subgraphs/metrics/server.ts', {
    METRICS_PORT: String(metricsPort),
    LOG_LEVEL: 'error',
  });
  if (service.child.pid) fault.pids.add(service.child.pid);
  return service;
};

async function untilAnswers(url: string): Promise<void> {
  const up = await pollUntil(() => answers200(new URL('/healthz', url).toString()), { timeoutMs: 20_000 });
  if (!up) throw new Error(`${url} did not answer /healthz within 20 s`);
}

beforeAll(async () => {
  fault = await startFaultPlatform(['writer']);
  metricsPort = await freePort();
  metrics = startMetricsProcess();
  await untilAnswers(`http://127.0.0.1:${metricsPort}/graphql`);
  gateway = await startGatewayProcess(fault.platform, {
    LOG_LEVEL: 'error',
    SUBGRAPH_METRICS_URL: `http://127.0.0.1:${metricsPort}/graphql`,
    SUBGRAPH_TIMEOUT_MS: String(TIMEOUT_MS),
    SUBGRAPH_CIRCUIT_FAILURES: '3',
    SUBGRAPH_CIRCUIT_COOLDOWN_MS: '1000',
  });
  if (gateway.child.pid) fault.pids.add(gateway.child.pid);
  await defineKpis(fault.platform, TENANT, [
    { code: 'hits', name: 'Hits', eventName: 'hit', aggregation: 'COUNT', refreshSeconds: 1 },
  ]);
}, 120_000);
afterAll(async () => {
  await gateway?.kill();
  await metrics?.kill();
  const pids = fault?.pids ?? new Set<number>();
  await fault?.stop();
  expect(leakedPids(pids)).toEqual([]);
});

/** POSTs a GraphQL body to the gateway process; with `abandonAfterSend`, hangs up once the body is sent. */
function post(
  body: unknown,
  token: string,
  abandonAfterSend = false,
): Promise<{ status: number; text: string }> {
  const url = new URL(gateway.url);
  return new Promise((resolve, reject) => {
    const sending = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST' },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      },
    );
    sending.setHeader('content-type', 'application/json');
    sending.setHeader('authorization', `Bearer ${token}`);
    sending.on('error', (error) => (abandonAfterSend ? resolve({ status: 0, text: '' }) : reject(error)));
    // A client whose own timeout fires after the request went out: it never reads the answer.
    if (abandonAfterSend) sending.on('finish', () => setTimeout(() => sending.destroy(), 20));
    sending.end(JSON.stringify(body));
  });
}

describe('client-facing behaviour during faults', () => {
  it('stores a batch once when a client that timed out on the first send sends it again', async () => {
    const token = await fault.platform.token(TENANT, ['ingest']);
    const events = new Producer(fault.platform, TENANT).batch(500);
    const body = { query: INGEST, variables: { events } };
    await post(body, token, true);
    const second = await post(body, token);
    expect(second.status).toBe(200);
    const { ingestEvents } = (
      JSON.parse(second.text) as { data: { ingestEvents: { accepted: number; duplicates: number } } }
    ).data;
    console.log(`resent batch: ${ingestEvents.accepted} accepted, ${ingestEvents.duplicates} duplicates`);
    expect(ingestEvents.accepted + ingestEvents.duplicates).toBe(events.length);
    await expectStoredExactlyOnce(fault, TENANT, events.length);
  }, 60_000);

  it('answers fast with partial data and SERVICE_UNAVAILABLE when a subgraph is SIGKILLed, then breaks the circuit', async () => {
    const viewer = await fault.platform.token(TENANT, ['viewer']);
    const query = { query: '{ kpis { code name current { value } } }' };
    const ask = async () => {
      const started = performance.now();
      const { status, text } = await post(query, viewer);
      return { status, elapsedMs: performance.now() - started, body: JSON.parse(text) as Answer };
    };
    type Answer = {
      data: { kpis: Array<{ code: string; current: unknown }> } | null;
      errors?: Array<{ message: string; path?: unknown[]; extensions?: { code?: string } }>;
    };
    await expect
      .poll(async () => (await ask()).body.data?.kpis[0]?.current, { timeout: 20_000 })
      .toEqual({ value: 500 });

    await metrics.kill();
    const lost = await ask();
    console.log(`query losing the metrics subgraph answered in ${lost.elapsedMs.toFixed(0)} ms`);
    expect(lost.elapsedMs).toBeLessThan(TIMEOUT_MS / 2);
    expect(lost.body.data).toEqual({ kpis: [{ code: 'hits', name: 'Hits', current: null }] });
    expect(lost.body.errors?.[0]?.message).toMatch(/subgraph metrics is unreachable/);
    expect(lost.body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');

    // 3 consecutive failures (1 attempt and 2 retries) opened the circuit: the next query fails fast.
    const open = await ask();
    expect(open.body.data).toEqual({ kpis: [{ code: 'hits', name: 'Hits', current: null }] });
    expect(open.body.errors?.[0]?.message).toMatch(/subgraph metrics is failing: circuit open/);
    expect(open.body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');

    metrics = startMetricsProcess();
    await untilAnswers(`http://127.0.0.1:${metricsPort}/graphql`);
    await expect
      .poll(async () => (await ask()).body, { timeout: 20_000 })
      .toEqual({
        data: { kpis: [{ code: 'hits', name: 'Hits', current: { value: 500 } }] },
      });
  }, 90_000);
});
