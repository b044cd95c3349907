// The reports subgraph alone, over the suite's Postgres, NATS and Redis: clients connect to it directly.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPool } from '../../db/pool.ts';
import { loadConfig, type Config } from '../../lib/config.ts';
import { signDevToken } from '../../lib/devKeys.ts';
import { createLogger } from '../../lib/logger.ts';
import {
  createRedisPubSub,
  publishReportProgress,
  reportProgressChannel,
  type RedisPubSub,
  type ReportProgress,
} from '../../lib/redis.ts';
import type { RunningService } from '../../lib/service.ts';
import { createTestDatabase, services, type TestDatabase } from '../../test/support/services.ts';
import { startReports } from './server.ts';

// A report of acme's, stored in beforeAll: progress is only followed for a report of the caller's tenant.
const REPORT_ID = 'a1a1a1a1-0000-4000-8000-000000000001';
const PROGRESS = `subscription { reportProgress(id: "${REPORT_ID}") { reportId generationId status progress message } }`;
const CHANNEL = reportProgressChannel('acme', REPORT_ID);

let database: TestDatabase;
let dataDir: string;
let config: Config;
let reports: RunningService;
let publisher: RedisPubSub;
const clients: Client[] = [];

const startService = () => startReports(config, createLogger('reports', 'silent'));

beforeAll(async () => {
  const { natsUrl, redisUrl } = services();
  database = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), 'pulsegraph-reports-'));
  config = loadConfig({
    NODE_ENV: 'test',
    AUTH_MODE: 'dev',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    REPORTS_PORT: '0',
    DATABASE_URL: database.appUrl,
    NATS_URL: natsUrl,
    REDIS_URL: redisUrl,
  });
  const admin = createPool(database.adminUrl, 1);
  await admin.query(
    `INSERT INTO reports (tenant_id, id, name, type, config) VALUES ('acme', $1, 'Orders', 'ADHOC', '{}')`,
    [REPORT_ID],
  );
  await admin.end();
  reports = await startService();
  publisher = createRedisPubSub(redisUrl);
});
// Each test starts with nobody listening on the channel, so untilSubscribers counts its own client only.
afterEach(async () => {
  for (const client of clients.splice(0)) await client.dispose();
  await untilSubscribers(0);
});
afterAll(async () => {
  await publisher?.close();
  await reports?.close();
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

/** A graphql-ws client straight to a reports subgraph, failing at once instead of retrying. */
function connect(
  options: { authorization?: string; headers?: Record<string, string>; service?: RunningService } = {},
): Client {
  const { authorization, headers, service = reports } = options;
  const client = createClient({
    url: service.url.replace(/^http/, 'ws'),
    webSocketImpl: class extends WebSocket {
      constructor(url: string, protocols: string) {
        super(url, protocols, { headers });
      }
    },
    connectionParams: authorization ? { authorization } : undefined,
    retryAttempts: 0,
  });
  clients.push(client);
  return client;
}

const bearer = async (tenant: string, roles: string[]) =>
  `Bearer ${await signDevToken(dataDir, { tenant, roles })}`;

/** Resolves once that many connections listen on acme's report's channel: nothing published after is missed. */
async function untilSubscribers(count: number): Promise<void> {
  await vi.waitFor(async () => {
    const [, listening] = (await publisher.getPublisher().pubsub('NUMSUB', CHANNEL)) as [string, number];
    expect(listening).toBe(count);
  });
}

const event = (generationId: string, progress: number, message?: string): ReportProgress => ({
  reportId: REPORT_ID,
  generationId,
  status: progress < 1 ? 'RUNNING' : 'COMPLETED',
  progress,
  message,
});

describe('reportProgress over WebSocket', () => {
  it("streams the caller's tenant's progress events of the report, in order, and no other tenant's", async () => {
    const events = connect({ authorization: await bearer('acme', ['viewer']) }).iterate({ query: PROGRESS });
    const first = events.next();
    await untilSubscribers(1);
    await publishReportProgress(publisher, 'acme', event('g1', 0.5, 'half way'));
    await publishReportProgress(publisher, 'globex', event('g9', 0.9));
    await publishReportProgress(publisher, 'acme', event('g1', 1));

    // Redis delivers in publish order, so a leaked globex event would come second.
    expect((await first).value).toEqual({ data: { reportProgress: event('g1', 0.5, 'half way') } });
    expect((await events.next()).value).toEqual({
      data: { reportProgress: { ...event('g1', 1), message: null } },
    });
  });

  it('accepts the token in the upgrade request Authorization header', async () => {
    const headers = { authorization: await bearer('acme', ['viewer']) };
    const events = connect({ headers }).iterate({ query: PROGRESS });
    const first = events.next();
    await untilSubscribers(1);
    await publishReportProgress(publisher, 'acme', event('g2', 0.1));
    expect((await first).value).toMatchObject({ data: { reportProgress: { generationId: 'g2' } } });
  });

  it('refuses a connection without a valid token', async () => {
    for (const authorization of [undefined, 'Bearer not-a-jwt']) {
      await expect(connect({ authorization }).iterate({ query: PROGRESS }).next()).rejects.toMatchObject({
        code: 4403,
      });
    }
  });

  it('answers FORBIDDEN to a token whose roles do not allow subscribing', async () => {
    const events = connect({ authorization: await bearer('acme', ['ingest']) }).iterate({ query: PROGRESS });
    await expect(events.next()).rejects.toEqual([
      expect.objectContaining({ extensions: { code: 'FORBIDDEN' } }),
    ]);
  });
});

describe('the reports service', () => {
  it('counts Redis among its readiness checks', async () => {
    const response = await fetch(reports.url.replace(/graphql$/, 'readyz'));
    expect(await response.json()).toMatchObject({ status: 'ready', checks: { redis: true } });
  });

  it('closes while a subscriber is still connected, releasing its Redis subscription', async () => {
    const service = await startService();
    const authorization = await bearer('acme', ['viewer']);
    const first = connect({ authorization, service }).iterate({ query: PROGRESS }).next();
    await untilSubscribers(1);
    const closed = expect(first).rejects.toMatchObject({ type: 'close' });
    await service.close();
    await closed;
  });
});

describe('reportProgressChannel', () => {
  it('names the channel reports:<tenant>:progress:<reportId>', () => {
    expect(reportProgressChannel('acme', 'r1')).toBe('reports:acme:progress:r1');
  });

  it('refuses a tenant id that could reach into another channel', () => {
    for (const tenant of ['', 'acme:progress', 'a*', 'globex\n']) {
      expect(() => reportProgressChannel(tenant, 'r1')).toThrow(/expected a tenant id/);
    }
  });
});
