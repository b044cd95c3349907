import { spawn, type ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const TOTAL = 50_000;
const BATCH = 2_500;
const INGEST = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted duplicates rejected { index } } }`;

let platform: TestPlatform;
let admin: pg.Pool;
let writer: ChildProcess | undefined;

/** The writer as its own OS process, as npm start runs it. */
function startWriterProcess(): ChildProcess {
  const child = spawn(process.execPath, ['subgraphs/metrics/writer.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      AUTH_MODE: 'dev',
      DATA_DIR: platform.dataDir,
      DATABASE_URL: platform.config.DATABASE_URL,
      NATS_URL: platform.nats.url,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}

const stored = async () =>
  Number(
    (await admin.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE tenant_id = 'crash'")).rows[0]!
      .n,
  );

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  platform = await startTestPlatform();
  admin = new pg.Pool({ connectionString: platform.adminUrl, max: 2 });
});
afterAll(async () => {
  writer?.kill('SIGKILL');
  await admin?.end();
  await platform?.stop();
});

describe('a writer killed mid-ingest', () => {
  it('loses nothing and counts nothing twice once restarted', async () => {
    const token = await platform.token('crash', ['admin']);
    const define = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`;
    for (const input of [
      { code: 'hits', name: 'Hits', eventName: 'hit', aggregation: 'COUNT' },
      { code: 'points', name: 'Points', eventName: 'hit', aggregation: 'SUM', valueField: 'points' },
    ]) {
      expect((await platform.graphql(define, { token, variables: { input } })).body.errors).toBeUndefined();
    }
    writer = startWriterProcess();
    const now = Date.now();
    let accepted = 0;
    let killed = false;
    for (let start = 0; start < TOTAL; start += BATCH) {
      const events = Array.from({ length: BATCH }, (_, i) => ({
        id: `hit-${start + i}`,
        type: 'USER_ACTION',
        name: 'hit',
        source: 'test',
        timestamp: new Date(now - ((start + i) % 3_600) * 1_000).toISOString(),
        attributes: { points: (start + i) % 7 },
      }));
      const { body } = await platform.graphql(INGEST, { token, variables: { events } });
      accepted += (body.data as { ingestEvents: { accepted: number } }).ingestEvents.accepted;
      if (!killed && start >= TOTAL / 4) {
        await until(async () => (await stored()) > 0, 30_000);
        writer.kill('SIGKILL'); // mid-stream: some batches stored, some fetched but not acked, most not read yet
        killed = true;
      }
    }
    expect(accepted).toBe(TOTAL);
    const beforeRestart = await stored();
    expect(beforeRestart).toBeGreaterThan(0);
    expect(beforeRestart).toBeLessThan(TOTAL);

    writer = startWriterProcess();
    await until(async () => (await stored()) === TOTAL, 120_000);

    const rollups = await admin.query<{ kpi_code: string; n: string; total: string }>(
      `SELECT kpi_code, sum(count) AS n, sum(sum) AS total FROM rollups
        WHERE tenant_id = 'crash' AND resolution = '1m' GROUP BY kpi_code ORDER BY kpi_code`,
    );
    const expectedPoints = Array.from({ length: TOTAL }, (_, i) => i % 7).reduce((a, b) => a + b, 0);
    expect(rollups.rows.map((r) => [r.kpi_code, Number(r.n), Number(r.total)])).toEqual([
      ['hits', TOTAL, 0],
      ['points', TOTAL, expectedPoints],
    ]);
    const { body } = await platform.graphql(
      `{ hits: kpi(code: "hits") { current { value } } points: kpi(code: "points") { current { value } } }`,
      {
        token,
      },
    );
    expect(body.data).toEqual({
      hits: { current: { value: TOTAL } },
      points: { current: { value: expectedPoints } },
    });
  }, 240_000);
});
