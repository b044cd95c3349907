// The report store over the suite's Postgres, as the app role under row-level security.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, withTenant, type TenantClient } from '../../db/pool.ts';
import { createTestDatabase, type TestDatabase } from '../../test/support/services.ts';
import { generationStore, reportStore, type NewReport } from './store.ts';

const report: NewReport = {
  name: 'Orders',
  type: 'ADHOC',
  config: {
    metrics: ['checkout.orders'],
    dimensions: [],
    filters: [],
    timeRange: { start: '2026-01-01T00:00:00.000Z', end: '2026-01-02T00:00:00.000Z', interval: '1h' },
  },
  schedule: null,
  format: 'CSV',
};

let database: TestDatabase;
let pool: pg.Pool;
const acme = <T>(fn: (client: TenantClient) => Promise<T>) => withTenant(pool, 'acme', fn);

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool(database.appUrl);
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('generations', () => {
  it('move QUEUED -> RUNNING -> COMPLETED, and a finished one cannot be started again', async () => {
    const { id: reportId } = await acme((c) => reportStore.create(c, report));
    const queued = await acme((c) =>
      generationStore.create(c, { reportId, format: 'CSV', trigger: 'manual' }),
    );
    expect(queued).toMatchObject({ status: 'QUEUED', progress: 0, attempts: 0, startedAt: null });
    const id = queued!.id;

    expect(
      await acme((c) => generationStore.complete(c, id, { rowCount: 1, byteCount: 1, filePath: 'x' })),
    ).toBe(undefined);
    expect(await acme((c) => generationStore.start(c, id))).toMatchObject({ status: 'RUNNING', attempts: 1 });
    await acme((c) => generationStore.progress(c, id, 0.7, 'reading'));
    // A redelivered job starts over: one more attempt, progress back to 0.
    expect(await acme((c) => generationStore.start(c, id))).toMatchObject({
      status: 'RUNNING',
      attempts: 2,
      progress: 0,
      message: null,
    });
    expect(await acme((c) => generationStore.progress(c, id, 1.5, 'too far'))).toMatchObject({ progress: 1 });
    const completed = await acme((c) =>
      generationStore.complete(c, id, { rowCount: 3_000_000_000, byteCount: 12, filePath: 'acme/a.csv' }),
    );
    expect(completed).toMatchObject({
      status: 'COMPLETED',
      progress: 1,
      rowCount: 3_000_000_000,
      byteCount: 12,
    });
    expect(completed!.finishedAt).toBeInstanceOf(Date);

    for (const change of [
      (c: TenantClient) => generationStore.start(c, id),
      (c: TenantClient) => generationStore.progress(c, id, 0.1, 'late'),
      (c: TenantClient) => generationStore.fail(c, id, 'late'),
    ])
      expect(await acme(change)).toBeUndefined();
    expect(await acme((c) => generationStore.latest(c, reportId))).toMatchObject({ id, status: 'COMPLETED' });
  });

  it('are one per scheduled tick, and any number for manual runs', async () => {
    const { id: reportId } = await acme((c) => reportStore.create(c, report));
    const create = (trigger: string) =>
      acme((c) => generationStore.create(c, { reportId, format: 'JSON', trigger }));
    expect(await create('schedule:2026-01-05T12:00:00.000Z')).toBeDefined();
    expect(await create('schedule:2026-01-05T12:00:00.000Z')).toBeUndefined();
    expect(await create('manual')).toBeDefined();
    const last = await create('manual');
    expect(await acme((c) => generationStore.latest(c, reportId))).toMatchObject({ id: last!.id });
  });

  it('fail from QUEUED with the reason as error and message', async () => {
    const { id: reportId } = await acme((c) => reportStore.create(c, report));
    const { id } = (await acme((c) =>
      generationStore.create(c, { reportId, format: 'CSV', trigger: 'manual' }),
    ))!;
    expect(await acme((c) => generationStore.fail(c, id, 'no stream'))).toMatchObject({
      status: 'FAILED',
      error: 'no stream',
      message: 'no stream',
    });
  });
});

describe('reports', () => {
  it('list by type and by status (READY without a generation, else the latest one)', async () => {
    const tenant = 'initech';
    const [ready, running] = await withTenant(pool, tenant, async (c) => [
      await reportStore.create(c, report),
      await reportStore.create(c, {
        ...report,
        type: 'SCHEDULED',
        schedule: { cron: '@daily', timezone: 'UTC' },
      }),
    ]);
    await withTenant(pool, tenant, async (c) => {
      const generation = await generationStore.create(c, {
        reportId: running.id,
        format: 'CSV',
        trigger: 'manual',
      });
      await generationStore.start(c, generation!.id);
    });
    const ids = (filter: { type?: string; status?: string }) =>
      withTenant(pool, tenant, async (c) => (await reportStore.list(c, filter)).map((r) => r.id));
    expect(await ids({})).toEqual([ready.id, running.id]);
    expect(await ids({ type: 'SCHEDULED' })).toEqual([running.id]);
    expect(await ids({ status: 'READY' })).toEqual([ready.id]);
    expect(await ids({ status: 'RUNNING' })).toEqual([running.id]);
    expect(await ids({ status: 'DRAFT' })).toEqual([]);
    expect(await acme((c) => reportStore.get(c, ready.id))).toBeUndefined();
  });

  it('update only the given fields, and remove a schedule given null', async () => {
    const created = await acme((c) =>
      reportStore.create(c, { ...report, schedule: { cron: '0 6 * * *', timezone: 'Europe/Berlin' } }),
    );
    expect(created.schedule).toEqual({ cron: '0 6 * * *', timezone: 'Europe/Berlin' });
    const renamed = await acme((c) => reportStore.update(c, created.id, { name: 'Renamed' }));
    expect(renamed).toMatchObject({
      name: 'Renamed',
      config: report.config,
      schedule: created.schedule,
      format: 'CSV',
    });
    const unscheduled = await acme((c) =>
      reportStore.update(c, created.id, { schedule: null, format: 'JSON' }),
    );
    expect(unscheduled).toMatchObject({ name: 'Renamed', schedule: null, format: 'JSON' });
  });

  it('find nothing for ids that are not uuids, without asking Postgres to cast them', async () => {
    expect(await acme((c) => reportStore.get(c, 'r1'))).toBeUndefined();
    expect(await acme((c) => reportStore.update(c, 'r1', { name: 'x' }))).toBeUndefined();
    expect(await acme((c) => generationStore.latest(c, 'r1'))).toBeUndefined();
    expect(await acme((c) => generationStore.start(c, 'g1'))).toBeUndefined();
  });
});
