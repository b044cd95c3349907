// Process crashes under steady ingest with live subscribers: the writer, the KPI calculator, the detector,
// the report worker and the gateway are SIGKILLed in turn and started again. After each: every accepted
// event stored once, KPI values exact, consumers drained, and subscribers that resumed by cursor saw
// every KPI value published once, in order.
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumers } from '../../streams/consumers.ts';
import { decodeCursor } from '../../streams/cursor.ts';
import { startGatewayProcess, type GatewayProcess } from '../support/processes.ts';
import { sseSubscribe } from '../support/subscribers.ts';
import {
  defineKpis,
  expectConsumerDrained,
  expectStoredExactlyOnce,
  generateReport,
  kpiValue,
  leakedPids,
  Producer,
  queueGeneration,
  reportStatus,
  startFaultPlatform,
  type FaultPlatform,
  type WorkerName,
} from './faultPlatform.ts';

const TENANT = 'crashes';
const HITS_UPDATED = `subscription { kpiUpdated(codes: ["hits"]) { value cursor } }`;
interface KpiValue {
  value: number;
  cursor: string;
}
let fault: FaultPlatform;
let producer: Producer;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  fault = await startFaultPlatform(['writer', 'calculator', 'detector', 'reportWorker']);
  producer = new Producer(fault.platform, TENANT);
  await defineKpis(fault.platform, TENANT, [
    { code: 'hits', name: 'Hits', eventName: 'hit', aggregation: 'COUNT', refreshSeconds: 1 },
    {
      code: 'points',
      name: 'Points',
      eventName: 'hit',
      aggregation: 'SUM',
      valueField: 'points',
      refreshSeconds: 1,
    },
  ]);
}, 120_000);
afterAll(async () => {
  for (const gateway of gateways) await gateway.kill();
  const pids = fault?.pids ?? new Set<number>();
  await fault?.stop();
  expect(leakedPids(pids)).toEqual([]);
});

/** Every stream sequence of kpi.<tenant>.hits on the KPI stream, oldest first. */
async function hitsSequences(): Promise<number[]> {
  const nc = await connect({ servers: fault.platform.nats.url });
  try {
    const consumer = await jetstream(nc).consumers.get('KPI', {
      filter_subjects: `kpi.${TENANT}.hits`,
      deliver_policy: DeliverPolicy.All,
    });
    const seqs: number[] = [];
    let pending = (await consumer.info(true)).num_pending;
    while (pending > 0) {
      for await (const m of await consumer.fetch({ max_messages: pending, expires: 1_000 })) {
        seqs.push(m.seq);
        pending = m.info.pending;
      }
    }
    return seqs;
  } finally {
    await nc.close();
  }
}

/** What subscribers received is exactly what the KPI stream holds from their first value on. */
async function expectSawEveryUpdateOnce(values: () => KpiValue[]): Promise<void> {
  await expect.poll(() => values().at(-1)?.value, { timeout: 30_000 }).toBe(producer.acknowledged.size);
  const received = values().map((v) => decodeCursor(v.cursor));
  const published = await hitsSequences();
  expect(received).toEqual(published.slice(published.indexOf(received[0]!)));
}

/** Stored once, KPIs exact, every consumer of the pipeline drained. */
async function expectConsistent(): Promise<void> {
  await expectStoredExactlyOnce(fault, TENANT, producer.acknowledged.size);
  await expect
    .poll(() => kpiValue(fault.platform, TENANT, 'hits'), { timeout: 30_000 })
    .toBe(producer.acknowledged.size);
  await expect
    .poll(() => kpiValue(fault.platform, TENANT, 'points'), { timeout: 30_000 })
    .toBe(producer.pointsTotal);
  for (const consumer of [consumers.writer, consumers.detector, consumers.reportWorker])
    await expectConsumerDrained(fault, consumer);
}

describe('process crashes', () => {
  it('the writer, calculator, detector and report worker each SIGKILLed mid-ingest lose and repeat nothing', async () => {
    const viewer = await fault.platform.token(TENANT, ['viewer']);
    const live = sseSubscribe<KpiValue>(
      fault.platform.gatewayUrl,
      viewer,
      HITS_UPDATED,
      {},
      { field: 'kpiUpdated' },
    );
    for (const worker of ['writer', 'calculator', 'detector', 'reportWorker'] satisfies WorkerName[]) {
      for (let round = 0; round < 3; round++) await producer.send(producer.batch(300));
      const pid = fault.workers.get(worker)!.child.pid;
      await fault.killWorker(worker);
      for (let round = 0; round < 3; round++) await producer.send(producer.batch(300));
      // A report queued while no worker runs is generated once one is back.
      const report =
        worker === 'reportWorker' ? await generateReport(fault.platform, TENANT, ['hits']) : undefined;
      if (report) expect(await queueGeneration(fault.platform, TENANT, report)).toBe('QUEUED');
      fault.startWorker(worker);
      if (report) {
        await expect
          .poll(() => reportStatus(fault.platform, TENANT, report), { timeout: 60_000 })
          .toBe('COMPLETED');
      }
      console.log(
        `${worker} (pid ${pid}) SIGKILLed and restarted; ${producer.acknowledged.size} events so far`,
      );
      await expectConsistent();
    }
    await expectSawEveryUpdateOnce(() => live.values);
    expect(live.errors).toEqual([]);
    live.close();
  }, 180_000);

  it('a gateway SIGKILLed under SSE subscribers: resuming by Last-Event-ID misses nothing and repeats nothing', async () => {
    const gateway: GatewayProcess = await startGatewayProcess(fault.platform, { LOG_LEVEL: 'error' });
    gateways.push(gateway);
    if (gateway.child.pid) fault.pids.add(gateway.child.pid);
    const viewer = await fault.platform.token(TENANT, ['viewer']);
    const before = sseSubscribe<KpiValue>(gateway.url, viewer, HITS_UPDATED, {}, { field: 'kpiUpdated' });
    for (let round = 0; round < 3; round++) {
      await producer.send(producer.batch(200));
      await expect
        .poll(() => before.values.at(-1)?.value, { timeout: 20_000 })
        .toBe(producer.acknowledged.size);
    }
    await gateway.kill();
    before.close();
    // The calculator goes on publishing while the gateway is down.
    for (let round = 0; round < 3; round++) await producer.send(producer.batch(200));
    const again = await startGatewayProcess(fault.platform, {
      LOG_LEVEL: 'error',
      GATEWAY_PORT: new URL(gateway.url).port,
    });
    gateways.push(again);
    if (again.child.pid) fault.pids.add(again.child.pid);
    const after = sseSubscribe<KpiValue>(
      again.url,
      viewer,
      HITS_UPDATED,
      {},
      {
        field: 'kpiUpdated',
        lastEventId: before.ids.at(-1),
      },
    );
    await producer.send(producer.batch(200));
    await expectSawEveryUpdateOnce(() => [...before.values, ...after.values]);
    expect(after.errors).toEqual([]);
    after.close();
    await again.kill();
    await expectConsistent();
  }, 120_000);
});
