// Graceful stop on SIGTERM, over real processes: a gateway under query load with live graphql-ws and
// SSE subscribers drains (/readyz 503 first), finishes what it accepted, ends every subscription so it
// can be resumed elsewhere, and exits 0; the event writer finishes the batch it holds and loses nothing.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import type { CloseEvent } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCursor } from '../streams/cursor.ts';
import { consumers } from '../streams/consumers.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { startGatewayProcess, startServiceProcess, type ServiceProcess } from './support/processes.ts';
import {
  publishKpiValues,
  sseSubscribe,
  wsClient,
  wsSubscribe,
  type Received,
} from './support/subscribers.ts';

const KPI_UPDATED = `subscription ($after: String) { kpiUpdated(codes: ["visits"], after: $after) { value cursor } }`;
const DRAIN_DELAY_MS = 1_500;
const SHUTDOWN_TIMEOUT_MS = 10_000;
interface KpiValue {
  value: number;
  cursor: string;
}

let platform: TestPlatform;
let admin: pg.Pool;
const started: ServiceProcess[] = [];

beforeAll(async () => {
  platform = await startTestPlatform();
  admin = new pg.Pool({ connectionString: platform.adminUrl, max: 2 });
  const { body } = await platform.graphql(
    `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`,
    {
      token: await platform.token('acme', ['admin']),
      variables: { input: { code: 'visits', name: 'Visits', eventName: 'visit', aggregation: 'COUNT' } },
    },
  );
  expect(body.errors).toBeUndefined();
}, 60_000);
afterAll(async () => {
  for (const service of started) await service.kill();
  await admin?.end();
  await platform?.stop();
});

/** What one request of the load ended with: 'answered', 'refused at connect', or what went wrong. */
type Outcome = { beforeSignal: boolean; result: string };

/** Queries `url` from four concurrent loops until `stop()` is true. */
async function queryLoad(url: string, token: string, signalled: () => boolean, stop: () => boolean) {
  const outcomes: Outcome[] = [];
  const loop = async () => {
    while (!stop()) {
      const beforeSignal = !signalled();
      const result = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ kpis { code } }' }),
      }).then(
        async (response) => {
          const body = (await response.json()) as { data?: { kpis?: unknown[] } };
          return response.status === 200 && body.data?.kpis?.length === 1
            ? 'answered'
            : `${response.status} ${JSON.stringify(body)}`;
        },
        (error: Error & { cause?: { code?: string } }) =>
          error.cause?.code === 'ECONNREFUSED'
            ? 'refused at connect'
            : `${error.message}: ${error.cause?.code ?? 'no error code'}`,
      );
      outcomes.push({ beforeSignal, result });
      // Once refused, the listener is gone for good: no need to hammer the closed port.
      if (result === 'refused at connect') await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await Promise.all(Array.from({ length: 4 }, loop));
  return outcomes;
}

/** Polls /readyz until the listener is gone; the statuses it answered. */
async function pollReadiness(url: string): Promise<number[]> {
  const statuses: number[] = [];
  for (;;) {
    const status = await fetch(new URL('/readyz', url)).then(
      (r) => r.status,
      () => undefined,
    );
    if (status === undefined) return statuses;
    statuses.push(status);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a gateway process stopped with SIGTERM under load', () => {
  it('answers every request it accepted, goes 503 on /readyz first, ends subscriptions resumably, and exits 0', async () => {
    const viewer = await platform.token('acme', ['viewer']);
    const published = await publishKpiValues(platform.nats.url, 'acme', [{ code: 'visits', value: 0 }]);
    const env = {
      SHUTDOWN_DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      RATE_LIMIT_QUERIES_PER_MINUTE: '0',
      RATE_LIMIT_QUERIES_PER_MINUTE_PER_TOKEN: '0',
    };
    const [draining, successor] = await Promise.all([
      startGatewayProcess(platform, env),
      startGatewayProcess(platform, env),
    ]);
    started.push(draining, successor);

    // Ten graphql-ws connections and ten SSE streams, each with the current value.
    const closes: CloseEvent[] = [];
    const sockets = Array.from({ length: 10 }, () => {
      const client = wsClient(draining.url, viewer);
      client.on('closed', (event) => closes.push(event as CloseEvent));
      return { client, received: wsSubscribe<KpiValue>(client, KPI_UPDATED, {}, 'kpiUpdated') };
    });
    const streams = Array.from({ length: 10 }, () =>
      sseSubscribe<KpiValue>(draining.url, viewer, KPI_UPDATED, {}, { field: 'kpiUpdated' }),
    );
    const subscribers: Received<KpiValue>[] = [...sockets.map((s) => s.received), ...streams];
    await Promise.all(subscribers.map((s) => s.until(1)));

    // Values keep coming before, during and after the stop.
    let publishing = true;
    const publisher = (async () => {
      for (let value = 1; publishing; value++) {
        published.push(...(await publishKpiValues(platform.nats.url, 'acme', [{ code: 'visits', value }])));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    let signalled = false;
    let exited = false;
    const load = queryLoad(
      draining.url,
      viewer,
      () => signalled,
      () => exited,
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await fetch(new URL('/readyz', draining.url))).status).toBe(200);
    const signalledAt = Date.now();
    draining.child.kill('SIGTERM');
    signalled = true;
    const readiness = pollReadiness(draining.url);
    const exit = await draining.exited;
    const stopMs = Date.now() - signalledAt;
    exited = true;
    const outcomes = await load;
    await new Promise((resolve) => setTimeout(resolve, 300));
    publishing = false;
    await publisher;

    expect(exit).toEqual({ code: 0, signal: null });
    const statuses = await readiness;
    expect(statuses).toContain(503);
    expect(statuses.at(-1)).toBe(503);
    const accepted = outcomes.filter((o) => o.beforeSignal);
    expect(accepted.length).toBeGreaterThan(0);
    expect(accepted.filter((o) => o.result !== 'answered')).toEqual([]);
    // After the signal: answered while draining, then refused at connect once the listener closed, or
    // reset: these loops keep connecting straight to the draining instance (no load balancer reading
    // /readyz), and since 2026-12-03 full runs of the suite saw 1 to 3 requests sent after the signal end
    // in ECONNRESET (the cause, a connection reset as the listener closes or one the server dropped, is
    // not pinned down yet: docs/scaling.md). Never an error answer, a wrong answer or a timeout.
    const afterSignal = outcomes.filter((o) => !o.beforeSignal);
    expect(afterSignal.filter((o) => o.result === 'answered').length).toBeGreaterThan(0);
    const ended = ['answered', 'refused at connect', 'fetch failed: ECONNRESET'];
    expect(afterSignal.filter((o) => !ended.includes(o.result))).toEqual([]);
    expect(closes.map((e) => [e.code, e.reason])).toEqual(
      Array.from({ length: 10 }, () => [1001, 'going away: reconnect and resume from your last cursor']),
    );
    // Each SSE stream ended without `complete`: the client is to reconnect with Last-Event-ID.
    await expect.poll(() => streams.every((s) => s.ended)).toBe(true);
    expect(streams.filter((s) => s.completed)).toEqual([]);
    console.info(
      `SIGTERM -> exit 0 in ${stopMs} ms (drain delay ${DRAIN_DELAY_MS} ms); ${accepted.length} requests ` +
        `accepted before the signal, all answered; after it ${afterSignal.filter((o) => o.result === 'answered').length} ` +
        `answered while draining, ${afterSignal.length - afterSignal.filter((o) => o.result === 'answered').length} ` +
        `refused at connect; /readyz answered ${JSON.stringify(statuses)}`,
    );

    // Each subscriber resumes on the other gateway from its last cursor: every value once, none missed.
    const last = published.at(-1)!;
    const resumed = [
      ...sockets.map(({ received }) => {
        const client = wsClient(successor.url, viewer);
        const after = wsSubscribe<KpiValue>(
          client,
          KPI_UPDATED,
          { after: received.values.at(-1)!.cursor },
          'kpiUpdated',
        );
        return { before: received, after, close: () => void client.dispose() };
      }),
      ...streams.map((received) => {
        const after = sseSubscribe<KpiValue>(
          successor.url,
          viewer,
          KPI_UPDATED,
          {},
          { field: 'kpiUpdated', lastEventId: received.ids.at(-1)! },
        );
        return { before: received, after, close: () => after.close() };
      }),
    ];
    for (const { before, after, close } of resumed) {
      await expect
        .poll(() => after.values.at(-1) && decodeCursor(after.values.at(-1)!.cursor), { timeout: 15_000 })
        .toBe(last);
      const seqs = [...before.values, ...after.values].map((v) => decodeCursor(v.cursor)!);
      expect(seqs).toEqual(published.slice(published.indexOf(seqs[0]!)));
      expect(after.errors).toEqual([]);
      close();
    }
  }, 90_000);
});

describe('the event writer stopped with SIGTERM mid-ingest', () => {
  it('acks or returns every message it held, and a successor stores every event exactly once', async () => {
    const ingest = await platform.token('drain', ['ingest']);
    const stored = async () =>
      Number(
        (await admin.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE tenant_id = 'drain'"))
          .rows[0]!.n,
      );
    const writer = startServiceProcess(platform, 'subgraphs/metrics/writer.ts', {
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    });
    started.push(writer);
    const TOTAL = 30_000;
    const BATCH = 2_000;
    let accepted = 0;
    let signalled = false;
    for (let start = 0; start < TOTAL; start += BATCH) {
      const events = Array.from({ length: BATCH }, (_, i) => ({
        id: `e-${start + i}`,
        type: 'USER_ACTION',
        name: 'visit',
        source: 'test',
        timestamp: new Date().toISOString(),
      }));
      const { body } = await platform.graphql(
        `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted } }`,
        { token: ingest, variables: { events } },
      );
      accepted += (body.data as { ingestEvents: { accepted: number } }).ingestEvents.accepted;
      if (!signalled && start >= TOTAL / 3) {
        await expect.poll(stored, { timeout: 30_000 }).toBeGreaterThan(0);
        writer.child.kill('SIGTERM'); // mid-stream: a batch in hand, more waiting on the stream
        signalled = true;
      }
    }
    expect(accepted).toBe(TOTAL);
    expect(await writer.exited).toEqual({ code: 0, signal: null });

    // Nothing the stopped writer received is left unacknowledged, and what it acked is stored.
    const nc = await connect({ servers: platform.nats.url });
    const info = await (
      await jetstreamManager(nc)
    ).consumers.info(consumers.writer.stream, consumers.writer.config.durable_name);
    await nc.close();
    expect(info.num_ack_pending).toBe(0);
    const storedAtStop = await stored();
    expect(storedAtStop).toBe(info.ack_floor.stream_seq);
    expect(storedAtStop).toBeLessThan(TOTAL);

    const successor = startServiceProcess(platform, 'subgraphs/metrics/writer.ts');
    started.push(successor);
    await expect.poll(stored, { timeout: 60_000, interval: 200 }).toBe(TOTAL);
    console.info(`writer stopped with ${storedAtStop} of ${TOTAL} stored; its successor stored the rest`);
  }, 90_000);
});
