// Infrastructure faults under steady ingest, on a nats-server, Postgres cluster and redis-server of this
// file's own: nats-server SIGKILLed and restarted, Postgres down for 10 s, Redis restarted.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportProgressChannel } from '../../lib/redis.ts';
import { consumers } from '../../streams/consumers.ts';
import { wsClient, wsSubscribe } from '../support/subscribers.ts';
import {
  defineKpis,
  expectConsumerDrained,
  expectStoredExactlyOnce,
  generateReport,
  kpiValue,
  leakedPids,
  Producer,
  queueGeneration,
  startFaultPlatform,
  untilWriterStores,
  type FaultPlatform,
} from './faultPlatform.ts';

const TENANT = 'faults';
let fault: FaultPlatform;
let producer: Producer;

beforeAll(async () => {
  fault = await startFaultPlatform(['writer', 'calculator', 'reportWorker']);
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
  await untilWriterStores(fault);
}, 180_000);
afterAll(async () => {
  const pids = fault?.pids ?? new Set<number>();
  await fault?.stop();
  expect(leakedPids(pids)).toEqual([]);
});

/** Every acknowledged event stored once, the writer's consumer drained, and both KPIs exact. */
async function expectConsistent(): Promise<void> {
  await expectStoredExactlyOnce(fault, TENANT, producer.acknowledged.size);
  await expectConsumerDrained(fault, consumers.writer);
  await expect
    .poll(() => kpiValue(fault.platform, TENANT, 'hits'), { timeout: 30_000 })
    .toBe(producer.acknowledged.size);
  await expect
    .poll(() => kpiValue(fault.platform, TENANT, 'points'), { timeout: 30_000 })
    .toBe(producer.pointsTotal);
}

describe('infrastructure faults', () => {
  it('stores every accepted event exactly once when nats-server is SIGKILLed mid-ingest and restarted', async () => {
    let restarted: Promise<void> | undefined;
    for (let round = 0; round < 16; round++) {
      if (round === 6) {
        await fault.platform.nats.kill('SIGKILL');
        // Down for a second while the producer keeps sending (and retrying what was not answered).
        restarted = new Promise((resolve) => setTimeout(resolve, 1_000)).then(() =>
          fault.platform.nats.restart(),
        );
      }
      await producer.send(producer.batch(250));
    }
    await restarted;
    console.log(`nats kill: ${producer.acknowledged.size} events acknowledged, ${producer.retries} resends`);
    await expectConsistent();
  }, 120_000);

  it('holds events in JetStream while Postgres is down for 10 s, reports degraded, then catches up', async () => {
    await producer.send(producer.batch(250));
    const readyz = new URL('/readyz', fault.platform.gatewayUrl);
    let degraded: { status: number; body: { status?: string } } | undefined;
    let sentWhileDown = 0;
    const unanswered: Array<Array<Record<string, unknown>>> = [];
    await fault.bouncePostgres(10_000, async () => {
      const started = Date.now();
      while (Date.now() - started < 8_000) {
        const batch = producer.batch(100);
        const answer = await producer.send(batch, 3_000).catch(() => undefined);
        if (answer) sentWhileDown += answer.accepted;
        else unanswered.push(batch);
        if (!degraded) {
          const response = await fetch(readyz);
          degraded = { status: response.status, body: (await response.json()) as { status?: string } };
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    });
    expect(degraded).toMatchObject({ status: 503, body: { status: 'degraded' } });
    console.log(
      `postgres down 10 s: ${sentWhileDown} events accepted into JetStream meanwhile, ${unanswered.length} batches unanswered`,
    );
    expect(sentWhileDown).toBeGreaterThan(0);
    // A client resends what was not answered, same ids: still stored once.
    for (const batch of unanswered) await producer.send(batch);
    await producer.send(producer.batch(250));
    await expectConsistent();
    await expect.poll(async () => (await fetch(readyz)).status, { timeout: 30_000 }).toBe(200);
  }, 120_000);

  it('counts rate limits in Redis and streams report progress again after Redis restarts', async () => {
    const redis = new Redis(fault.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const viewer = await fault.platform.token(TENANT, ['viewer']);
    const query = () => fault.platform.graphql('{ kpis { code } }', { token: viewer });
    expect((await query()).status).toBe(200);
    expect(await redis.keys(`ratelimit:{${TENANT}}:*`)).not.toEqual([]);
    redis.disconnect();

    await fault.redis.kill('SIGKILL');
    // Redis down: the limiter fails open, the query is still answered.
    expect((await query()).status).toBe(200);
    await fault.redis.restart();
    const fresh = new Redis(fault.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await fresh.connect();
    expect(await fresh.keys('*')).toEqual([]);
    await expect
      .poll(
        async () => {
          await query();
          return (await fresh.keys(`ratelimit:{${TENANT}}:*`)).length;
        },
        { timeout: 20_000 },
      )
      .toBeGreaterThan(0);

    // Report progress goes through Redis pub/sub: a subscriber after the restart sees a run to the end.
    const report = await generateReport(fault.platform, TENANT, ['hits']);
    const client = wsClient(fault.platform.gatewayUrl, viewer);
    const progress = wsSubscribe<{ status: string }>(
      client,
      `subscription ($id: ID!) { reportProgress(id: $id) { status } }`,
      { id: report },
      'reportProgress',
    );
    const channel = reportProgressChannel(TENANT, report);
    const listeners = async () => ((await fresh.pubsub('NUMSUB', channel)) as [string, number])[1];
    await expect.poll(listeners, { timeout: 15_000 }).toBe(1);
    expect(await queueGeneration(fault.platform, TENANT, report)).toBe('QUEUED');
    await expect.poll(() => progress.values.at(-1)?.status, { timeout: 30_000 }).toBe('COMPLETED');
    expect(progress.values.map((p) => p.status)).toContain('RUNNING');
    expect(progress.errors).toEqual([]);
    progress.close();
    await client.dispose();
    fresh.disconnect();
  }, 60_000);
});
