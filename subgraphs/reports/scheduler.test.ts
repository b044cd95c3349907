// The report scheduler over the suite's Postgres, NATS and Redis, with a fake clock.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, withTenant } from '../../db/pool.ts';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { createRedisPubSub, type RedisPubSub } from '../../lib/redis.ts';
import type { Broker } from '../../streams/connection.ts';
import { Stream, subjects } from '../../streams/subjects.ts';
import { useOwnNats } from '../../test/support/ownNats.ts';
import { createTestDatabase, services, type TestDatabase } from '../../test/support/services.ts';
import { dueTicks, ReportScheduler, startScheduler } from './scheduler.ts';
import { generationStore, reportStore, type GenerationRow } from './store.ts';

const MINUTE = 60_000;
const tenant = 'acme';

// A nats-server of its own: no report worker of another test file takes these jobs off the stream.
const own = useOwnNats('scheduler');
let database: TestDatabase;
let pool: pg.Pool;
let redis: RedisPubSub;
let reportId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool(database.appUrl);
  redis = createRedisPubSub(services().redisUrl);
  const report = await withTenant(pool, tenant, (client) =>
    reportStore.create(client, {
      name: 'Every minute',
      type: 'SCHEDULED',
      config: {
        metrics: ['checkout.orders'],
        dimensions: [],
        filters: [],
        timeRange: { start: '2026-01-01T00:00:00.000Z', end: '2026-01-02T00:00:00.000Z', interval: null },
      },
      schedule: { cron: '* * * * *', timezone: 'UTC' },
      format: 'CSV',
    }),
  );
  reportId = report.id;
});
afterAll(async () => {
  await redis?.close();
  await pool?.end();
  await database?.drop();
});

const schedulerAt = (now: () => number) =>
  new ReportScheduler({ pool, broker: own.broker, redis, logger: createLogger('scheduler', 'silent') }, now);

const generations = () =>
  withTenant(
    pool,
    tenant,
    async (client) =>
      (
        await client.query<{ id: string; trigger: string }>(
          'SELECT id, trigger FROM report_generations WHERE report_id = $1 ORDER BY trigger',
          [reportId],
        )
      ).rows,
  );

/** The Nats-Msg-Id of every job on the REPORTS stream. */
async function jobIds(): Promise<string[]> {
  const jsm = await jetstreamManager(own.broker.nc);
  const { state } = await jsm.streams.info(Stream.REPORTS);
  const ids: string[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const message = await jsm.streams.getMessage(Stream.REPORTS, { seq });
    expect(message?.subject).toBe(subjects.reportJobs(tenant));
    ids.push(message!.header.get('Nats-Msg-Id'));
  }
  return ids;
}

describe('the report scheduler', () => {
  it('queues exactly one generation and one job per tick, with two schedulers on the same clock', async () => {
    let now = Date.parse('2026-01-05T12:00:30Z');
    const clock = () => now;
    const [one, two] = [schedulerAt(clock), schedulerAt(clock)];
    const created: GenerationRow[] = [];
    // Twice a minute for five minutes: 12:00:30 (which looks back one minute), 12:01:00, ... 12:04:30.
    for (; now <= Date.parse('2026-01-05T12:04:30Z'); now += MINUTE / 2) {
      for (const batch of await Promise.all([one.pass(), two.pass()])) created.push(...batch);
    }

    const ticks = ['12:00', '12:01', '12:02', '12:03', '12:04'].map(
      (t) => `schedule:2026-01-05T${t}:00.000Z`,
    );
    expect(created.map((g) => g.trigger).sort()).toEqual(ticks);
    expect(created.every((g) => g.status === 'QUEUED' && g.reportId === reportId)).toBe(true);
    const stored = await generations();
    expect(stored.map((g) => g.trigger)).toEqual(ticks);
    expect((await jobIds()).sort()).toEqual(stored.map((g) => `${tenant}:${g.id}`).sort());
  });

  it('on start runs only the tick of the last minute, never the ones it missed while down', async () => {
    const restarted = schedulerAt(() => Date.parse('2026-01-05T15:30:10Z'));
    const created = await restarted.pass();
    expect(created.map((g) => g.trigger)).toEqual(['schedule:2026-01-05T15:30:00.000Z']);
    expect(await generations()).toHaveLength(6);
    expect(await jobIds()).toHaveLength(6);
  });

  it('leaves no generation QUEUED when its job cannot be published', async () => {
    const closed = await connect({ servers: own.nats.url });
    await closed.close();
    const unreachable: Broker = { ...own.broker, nc: closed };
    const scheduler = new ReportScheduler(
      { pool, broker: unreachable, redis, logger: createLogger('scheduler', 'silent') },
      () => Date.parse('2026-01-05T16:00:05Z'),
    );
    expect(await scheduler.pass()).toEqual([]);
    const failed = await withTenant(pool, tenant, (client) => generationStore.latest(client, reportId));
    expect(failed).toMatchObject({
      trigger: 'schedule:2026-01-05T16:00:00.000Z',
      status: 'FAILED',
      error: expect.stringMatching(/^the job could not be queued: .*closed/i) as unknown,
    });
    expect(await jobIds()).toHaveLength(6);
  });
});

describe('the scheduler process', () => {
  it('passes every interval until closed', async () => {
    const config = loadConfig({
      NODE_ENV: 'test',
      AUTH_MODE: 'dev',
      LOG_LEVEL: 'silent',
      DATABASE_URL: database.appUrl,
      NATS_URL: own.nats.url,
      REDIS_URL: services().redisUrl,
    });
    let now = Date.parse('2026-01-05T17:00:10Z');
    const scheduler = await startScheduler(config, createLogger('scheduler', 'silent'), {
      now: () => now,
      intervalMs: 20,
    });
    try {
      await expect.poll(async () => (await generations()).length).toBe(8);
      now += 2 * MINUTE;
      await expect.poll(async () => (await generations()).length).toBe(10);
    } finally {
      await scheduler.close();
    }
    expect((await generations()).slice(-3).map((g) => g.trigger)).toEqual([
      'schedule:2026-01-05T17:00:00.000Z',
      'schedule:2026-01-05T17:01:00.000Z',
      'schedule:2026-01-05T17:02:00.000Z',
    ]);
  });
});

describe('dueTicks', () => {
  it('gives the ticks after one moment and up to another, in the schedule time zone', () => {
    const at = (iso: string) => Date.parse(iso);
    const iso = (ticks: Date[]) => ticks.map((t) => t.toISOString());
    expect(
      iso(
        dueTicks(
          { cron: '*/15 * * * *', timezone: 'UTC' },
          at('2026-01-05T12:00:00Z'),
          at('2026-01-05T12:45:00Z'),
        ),
      ),
    ).toEqual(['2026-01-05T12:15:00.000Z', '2026-01-05T12:30:00.000Z', '2026-01-05T12:45:00.000Z']);
    // 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    const berlin = { cron: '0 9 * * *', timezone: 'Europe/Berlin' };
    expect(iso(dueTicks(berlin, at('2026-01-05T00:00:00Z'), at('2026-01-06T00:00:00Z')))).toEqual([
      '2026-01-05T08:00:00.000Z',
    ]);
    expect(iso(dueTicks(berlin, at('2026-07-05T00:00:00Z'), at('2026-07-06T00:00:00Z')))).toEqual([
      '2026-07-05T07:00:00.000Z',
    ]);
    expect(dueTicks(berlin, at('2026-07-05T12:00:00Z'), at('2026-07-05T12:00:00Z'))).toEqual([]);
  });
});
