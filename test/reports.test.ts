// Reports through the gateway: definitions over federated KPIs, validation, roles and tenancy, and
// generations queued on the REPORTS stream with their progress for late subscribers.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, withTenant } from '../db/pool.ts';
import { createRedisPubSub, type RedisPubSub } from '../lib/redis.ts';
import { Stream, subjects } from '../streams/subjects.ts';
import { announce } from '../subgraphs/reports/queue.ts';
import { generationStore, type GenerationRow } from '../subgraphs/reports/store.ts';
import { startTestPlatform, type GraphQLBody, type TestPlatform } from './support/platform.ts';
import { services } from './support/services.ts';
import { wsClient, wsSubscribe } from './support/subscribers.ts';

const DEFINE = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`;
const REPORT_FIELDS = `id name type status format schedule { cron timezone }
  config { metrics dimensions filters { field operator value } timeRange { start end interval } }
  kpis { code name } lastRun { id status } createdAt updatedAt`;
const CREATE = `mutation ($input: CreateReportInput!) { createReport(input: $input) { ${REPORT_FIELDS} } }`;
const UPDATE = `mutation ($id: ID!, $input: UpdateReportInput!) { updateReport(id: $id, input: $input) { ${REPORT_FIELDS} } }`;
const READ = `query ($id: ID!) { report(id: $id) { name status config { metrics dimensions } kpis { code name } lastRun { id } } }`;
const GENERATE = `mutation ($id: ID!) { generateReport(id: $id) { id reportId status progress startedAt finishedAt rowCount downloadUrl error } }`;
const PROGRESS = `subscription ($id: ID!) { reportProgress(id: $id) { reportId generationId status progress message } }`;

const input = {
  name: 'Revenue and orders by country',
  type: 'ADHOC',
  config: {
    metrics: ['checkout.revenue', 'checkout.orders'],
    dimensions: ['country'],
    filters: [{ field: 'country', operator: 'eq', value: 'DE' }],
    timeRange: { start: '2026-11-01T00:00:00Z', end: '2026-11-08T00:00:00Z', interval: '1d' },
  },
};

let platform: TestPlatform;
let admin: string;
let viewer: string;
let nc: NatsConnection;
let pool: pg.Pool;
let redis: RedisPubSub;

/** Runs an operation as `token` and returns its data, failing on any error. */
async function data(query: string, token: string, variables: Record<string, unknown> = {}) {
  const { body } = await platform.graphql(query, { token, variables });
  expect(body.errors).toBeUndefined();
  return body.data!;
}
const errorOf = (body: GraphQLBody) => ({
  code: body.errors?.[0]?.extensions?.code,
  message: body.errors?.[0]?.message,
});

beforeAll(async () => {
  platform = await startTestPlatform();
  admin = await platform.token('acme', ['admin']);
  viewer = await platform.token('acme', ['viewer']);
  nc = await connect({ servers: platform.config.NATS_URL! });
  pool = createPool(platform.config.DATABASE_URL!);
  redis = createRedisPubSub(services().redisUrl);
  for (const kpi of [
    { code: 'checkout.revenue', name: 'Revenue', aggregation: 'SUM', valueField: 'amount' },
    { code: 'checkout.orders', name: 'Orders', aggregation: 'COUNT' },
  ]) {
    await data(DEFINE, admin, {
      input: { ...kpi, eventName: 'checkout.completed', dimensions: ['country'] },
    });
  }
});
afterAll(async () => {
  await redis?.close();
  await pool?.end();
  await nc?.close();
  await platform?.stop();
});

/** Creates the report of `input` (with overrides) as admin and returns it. */
async function createReport(overrides: Record<string, unknown> = {}) {
  const created = await data(CREATE, admin, { input: { ...input, ...overrides } });
  return created['createReport'] as { id: string } & Record<string, unknown>;
}

/** The jobs stored on the REPORTS stream for a tenant. */
async function jobsOf(tenant: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(Stream.REPORTS, { subjects_filter: subjects.reportJobs(tenant) });
  return info.state.subjects?.[subjects.reportJobs(tenant)] ?? 0;
}

describe('report definitions through the gateway', () => {
  it('creates a report over two KPIs and reads it back with the KPIs resolved by the metadata subgraph', async () => {
    const report = await createReport();
    expect(report).toMatchObject({
      name: 'Revenue and orders by country',
      type: 'ADHOC',
      status: 'READY',
      format: 'CSV',
      schedule: null,
      config: {
        ...input.config,
        timeRange: { start: '2026-11-01T00:00:00.000Z', end: '2026-11-08T00:00:00.000Z', interval: '1d' },
      },
      lastRun: null,
    });
    expect(report['id']).toMatch(/^[0-9a-f-]{36}$/);

    const read = await data(READ, viewer, { id: report.id });
    expect(read['report']).toEqual({
      name: 'Revenue and orders by country',
      status: 'READY',
      config: { metrics: ['checkout.revenue', 'checkout.orders'], dimensions: ['country'] },
      kpis: [
        { code: 'checkout.revenue', name: 'Revenue' },
        { code: 'checkout.orders', name: 'Orders' },
      ],
      lastRun: null,
    });
    const listed = await data(
      `{ reports { id } adhoc: reports(type: ADHOC) { id } daily: reports(type: SCHEDULED) { id } }`,
      viewer,
    );
    expect(listed['reports']).toContainEqual({ id: report.id });
    expect(listed['adhoc']).toContainEqual({ id: report.id });
    expect(listed['daily']).not.toContainEqual({ id: report.id });
  });

  it('updates only what it is given, and a schedule makes it visible to the scheduler', async () => {
    const report = await createReport();
    const updated = await data(UPDATE, admin, {
      id: report.id,
      input: {
        name: 'Weekly revenue',
        format: 'JSON',
        schedule: { cron: '0 6 * * MON', timezone: 'Europe/Berlin' },
      },
    });
    expect(updated['updateReport']).toMatchObject({
      id: report.id,
      name: 'Weekly revenue',
      format: 'JSON',
      schedule: { cron: '0 6 * * MON', timezone: 'Europe/Berlin' },
      config: { metrics: input.config.metrics, dimensions: ['country'] },
    });
    const changed = updated['updateReport'] as { updatedAt: string; createdAt: string };
    expect(Date.parse(changed.updatedAt)).toBeGreaterThan(Date.parse(changed.createdAt));
    const { rows } = await pool.query<{ report_id: string }>(
      'SELECT report_id FROM platform_scheduled_reports()',
    );
    expect(rows.map((row) => row.report_id)).toContain(report.id);

    const cleared = await data(UPDATE, admin, { id: report.id, input: { schedule: null } });
    expect(cleared['updateReport']).toMatchObject({ name: 'Weekly revenue', schedule: null });
  });

  it('refuses invalid definitions with BAD_USER_INPUT saying what was expected', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ config: { ...input.config, metrics: ['checkout.revenue', 'nope.kpi'] } }, /unknown KPI "nope\.kpi"/],
      [{ schedule: { cron: 'every monday' } }, /schedule\.cron: expected five fields/],
      [
        {
          config: {
            ...input.config,
            timeRange: { start: '2026-11-08T00:00:00Z', end: '2026-11-01T00:00:00Z' },
          },
        },
        /config\.timeRange: expected start before end/,
      ],
      [{ config: { ...input.config, dimensions: ['browser'] } }, /"browser" is not a dimension of KPI/],
      [{ name: ' ' }, /name: expected 1 to 200 characters/],
    ];
    for (const [overrides, message] of cases) {
      const { body } = await platform.graphql(CREATE, {
        token: admin,
        variables: { input: { ...input, ...overrides } },
      });
      expect(errorOf(body)).toEqual({
        code: 'BAD_USER_INPUT',
        message: expect.stringMatching(message) as unknown,
      });
    }
    const report = await createReport();
    const { body } = await platform.graphql(UPDATE, {
      token: admin,
      variables: { id: report.id, input: { schedule: { cron: '* * * *' } } },
    });
    expect(errorOf(body).code).toBe('BAD_USER_INPUT');
  });

  it('refuses createReport, updateReport and generateReport to a viewer with FORBIDDEN', async () => {
    const report = await createReport();
    const attempts = [
      platform.graphql(CREATE, { token: viewer, variables: { input } }),
      platform.graphql(UPDATE, { token: viewer, variables: { id: report.id, input: { name: 'Hijacked' } } }),
      platform.graphql(GENERATE, { token: viewer, variables: { id: report.id } }),
    ];
    for (const { body } of await Promise.all(attempts)) expect(errorOf(body).code).toBe('FORBIDDEN');
    expect(await data(READ, viewer, { id: report.id })).toMatchObject({
      report: { name: input.name, lastRun: null },
    });
  });

  it('shows another tenant none of it', async () => {
    const report = await createReport();
    const other = await platform.token('globex', ['admin']);
    expect(
      await data(`query ($id: ID!) { reports { id } report(id: $id) { id } }`, other, { id: report.id }),
    ).toEqual({
      reports: [],
      report: null,
    });
    for (const query of [GENERATE, UPDATE]) {
      const { body } = await platform.graphql(query, {
        token: other,
        variables: { id: report.id, input: { name: 'x' } },
      });
      expect(errorOf(body).code).toBe('NOT_FOUND');
    }
    expect(await data(READ, admin, { id: report.id })).toMatchObject({
      report: { name: input.name, lastRun: null },
    });
  });

  it('answers null for an id that is not a report id', async () => {
    expect(await data(READ, viewer, { id: 'not-a-uuid' })).toEqual({ report: null });
  });
});

describe('report generations', () => {
  it('queues a generation at once, as a job on the REPORTS stream, and shows it as lastRun', async () => {
    const report = await createReport({ format: 'JSON' });
    const before = await jobsOf('acme');
    const generated = await data(GENERATE, admin, { id: report.id });
    const generation = generated['generateReport'] as { id: string };
    expect(generation).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      reportId: report.id,
      status: 'QUEUED',
      progress: 0,
      startedAt: null,
      finishedAt: null,
      rowCount: null,
      downloadUrl: null,
      error: null,
    });

    expect(await jobsOf('acme')).toBe(before + 1);
    const jsm = await jetstreamManager(nc);
    const job = await jsm.streams.getMessage(Stream.REPORTS, { last_by_subj: subjects.reportJobs('acme') });
    expect(job?.header.get('Nats-Msg-Id')).toBe(`acme:${generation.id}`);
    expect(job?.json()).toMatchObject({
      tenant: 'acme',
      source_service: 'reports',
      event_id: generation.id,
      payload: { generationId: generation.id, reportId: report.id },
    });

    const read = await data(
      `query ($id: ID!) { report(id: $id) { status lastRun { id status } } queued: reports(status: QUEUED) { id } ready: reports(status: READY) { id } }`,
      viewer,
      { id: report.id },
    );
    expect(read['report']).toEqual({ status: 'QUEUED', lastRun: { id: generation.id, status: 'QUEUED' } });
    expect(read['queued']).toContainEqual({ id: report.id });
    expect(read['ready']).not.toContainEqual({ id: report.id });
    const stored = await withTenant(pool, 'acme', (client) => generationStore.get(client, generation.id));
    expect(stored).toMatchObject({ format: 'JSON', trigger: 'manual', attempts: 0 });
  });

  it('gives a late reportProgress subscriber the current state at once, then live progress to the end', async () => {
    const report = await createReport();
    const generated = await data(GENERATE, admin, { id: report.id });
    const generationId = (generated['generateReport'] as { id: string }).id;
    const step = { reportId: report.id, generationId };

    const client = wsClient(platform.gatewayUrl, viewer);
    try {
      const late = wsSubscribe<Record<string, unknown>>(
        client,
        PROGRESS,
        { id: report.id },
        'reportProgress',
      );
      expect(await late.until(1)).toEqual([{ ...step, status: 'QUEUED', progress: 0, message: null }]);

      // What the report worker does, through the same store and announcements.
      const work = async (change: (client: pg.PoolClient) => Promise<GenerationRow | undefined>) => {
        const generation = await withTenant(pool, 'acme', change);
        await announce(redis, 'acme', generation!);
      };
      await work((c) => generationStore.start(c, generationId));
      await work((c) => generationStore.progress(c, generationId, 0.5, 'half way'));
      await work((c) =>
        generationStore.complete(c, generationId, { rowCount: 14, byteCount: 512, filePath: 'acme/x.csv' }),
      );
      expect((await late.until(4)).slice(1)).toEqual([
        { ...step, status: 'RUNNING', progress: 0, message: null },
        { ...step, status: 'RUNNING', progress: 0.5, message: 'half way' },
        { ...step, status: 'COMPLETED', progress: 1, message: 'half way' },
      ]);
      late.close();
    } finally {
      await client.dispose();
    }

    const after = wsClient(platform.gatewayUrl, viewer);
    try {
      const latest = wsSubscribe<Record<string, unknown>>(
        after,
        PROGRESS,
        { id: report.id },
        'reportProgress',
      );
      expect(await latest.until(1)).toEqual([
        { ...step, status: 'COMPLETED', progress: 1, message: 'half way' },
      ]);
      latest.close();
    } finally {
      await after.dispose();
    }
    const read = await data(
      `query ($id: ID!) { report(id: $id) { status lastRun { status progress rowCount startedAt finishedAt downloadUrl error } } }`,
      viewer,
      { id: report.id },
    );
    expect(read['report']).toEqual({
      status: 'COMPLETED',
      lastRun: {
        status: 'COMPLETED',
        progress: 1,
        rowCount: 14,
        startedAt: expect.any(String) as unknown,
        finishedAt: expect.any(String) as unknown,
        downloadUrl: `/reports/${generationId}/download`,
        error: null,
      },
    });
  });
});
