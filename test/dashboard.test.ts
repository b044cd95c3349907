// The dashboard in a real browser (Debian's Chromium driven by playwright-core) over the real platform:
// the built page served by the gateway, tiles that follow ingested events without a reload, a network
// cut between browser and gateway that the page states and recovers from by resuming at its cursor,
// and report progress as a report worker generates a report.
import { readFile, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDashboard } from '../dashboard/build.ts';
import { createLogger } from '../lib/logger.ts';
import { createRedisPubSub, reportProgressChannel } from '../lib/redis.ts';
import type { RunningService } from '../lib/service.ts';
import { startReportWorker } from '../subgraphs/reports/worker.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const INGEST = `mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted } }`;

/** A TCP relay between the browser and the gateway that can cut every connection and refuse new ones. */
interface NetworkCut {
  url: string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

async function startRelay(target: URL): Promise<NetworkCut> {
  const open = new Set<Socket>();
  let blocked = false;
  const server: Server = createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        open.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      blocked = true;
      for (const socket of open) socket.destroy();
    },
    restore() {
      blocked = false;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** graphql-ws frames of one WebSocket the page opened, as the browser sent and received them. */
interface SocketFrames {
  sent: {
    type: string;
    id?: string;
    payload?: { query?: string; documentId?: string; variables?: Record<string, unknown> };
  }[];
  received: { type: string; id?: string; payload?: { data?: Record<string, unknown> } }[];
}

interface KpiValueFrame {
  value: number;
  cursor: string;
  kpi: { code: string };
}

/** The kpiUpdated values a socket delivered for one KPI, in order. */
function kpiValues(frames: SocketFrames, code?: string): KpiValueFrame[] {
  return frames.received
    .map((frame) => frame.payload?.data?.['kpiUpdated'] as KpiValueFrame | undefined)
    .filter(
      (value): value is KpiValueFrame =>
        value !== undefined && (code === undefined || value.kpi.code === code),
    );
}

/** The variables of the kpiUpdated subscribe frame a socket sent. */
function kpiSubscription(frames: SocketFrames): Record<string, unknown> | undefined {
  return frames.sent.find((frame) => frame.type === 'subscribe' && frame.payload?.variables?.['codes'])
    ?.payload?.variables;
}

let platform: TestPlatform;
let reportWorker: RunningService | undefined;
let relay: NetworkCut;
let browser: Browser;
let outDir: string;
let viewer: string;
let sent = 0;

async function ingest(events: { name: string; attributes?: Record<string, unknown> }[]): Promise<void> {
  const { body } = await platform.graphql(INGEST, {
    token: await platform.token('acme', ['ingest']),
    variables: {
      events: events.map((event) => ({
        id: `dashboard-${sent++}`,
        type: 'BUSINESS_EVENT',
        source: 'web',
        timestamp: new Date().toISOString(),
        ...event,
      })),
    },
  });
  expect(body.errors).toBeUndefined();
}

const visits = (count: number) => ingest(Array.from({ length: count }, () => ({ name: 'visit' })));

async function admin<T>(query: string, variables: Record<string, unknown>): Promise<T> {
  const { body } = await platform.graphql(query, {
    token: await platform.token('acme', ['admin']),
    variables,
  });
  expect(body.errors).toBeUndefined();
  return body.data as T;
}

/** The current value of a KPI as the API computes it. */
async function currentValue(code: string): Promise<number | undefined> {
  const { body } = await platform.graphql(`query ($code: ID!) { kpi(code: $code) { current { value } } }`, {
    token: viewer,
    variables: { code },
  });
  return (body.data?.['kpi'] as { current: { value: number } | null } | null)?.current?.value;
}

/** What the page shows, in a line per tile, for the test log. */
async function describePage(page: Page): Promise<string> {
  const status = await page.locator('#connection').textContent();
  const tiles = await page
    .locator('.tile')
    .evaluateAll((nodes) => nodes.map((node) => (node as HTMLElement).innerText.replace(/\s+/g, ' ').trim()));
  const reports = await page
    .locator('.report')
    .evaluateAll((nodes) => nodes.map((node) => (node as HTMLElement).innerText.replace(/\s+/g, ' ').trim()));
  return [
    `connection: ${status}`,
    ...tiles.map((t) => `tile: ${t}`),
    ...reports.map((r) => `report: ${r}`),
  ].join('\n');
}

beforeAll(async () => {
  // The page under test is built from the sources now, so the test runs on a clean clone.
  outDir = await scratchDir('dashboard');
  const buildStarted = Date.now();
  await buildDashboard(outDir);
  console.log(`dashboard built in ${Date.now() - buildStarted} ms`);
  platform = await startTestPlatform({ workers: true, env: { DASHBOARD_DIR: outDir } });
  reportWorker = await startReportWorker(platform.config, createLogger('report-worker', 'silent'));
  viewer = await platform.token('acme', ['viewer']);
  const define = `mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }`;
  await admin(define, {
    input: {
      code: 'visits',
      name: 'Visits',
      unit: 'visits',
      eventName: 'visit',
      aggregation: 'COUNT',
      refreshSeconds: 1,
    },
  });
  await admin(define, {
    input: {
      code: 'checkout.revenue',
      name: 'Revenue',
      unit: 'EUR',
      eventName: 'checkout.completed',
      aggregation: 'SUM',
      valueField: 'amount',
      refreshSeconds: 1,
    },
  });
  relay = await startRelay(new URL(platform.gatewayUrl));
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await relay?.close();
  await reportWorker?.close();
  await platform?.stop();
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

describe('the dashboard in a browser', () => {
  it('asks for a token with a labelled field, refuses a bad one, and opens with a good one', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${relay.url}/`);
      const field = page.getByLabel('Access token');
      await expect.poll(() => field.isVisible()).toBe(true);
      await field.fill('not-a-token');
      await field.press('Enter');
      await expect.poll(() => page.locator('#problem').textContent()).toContain('The token was refused');
      expect(await field.isVisible()).toBe(true);
      await field.fill(viewer);
      await field.press('Enter');
      await expect.poll(() => page.locator('[data-kpi="visits"]').isVisible()).toBe(true);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state')).toBe('live');
    } finally {
      await page.close();
    }
  });

  it('moves a tile as events arrive, states a cut connection, and resumes at its cursor with nothing missed', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const pageErrors: string[] = [];
    const consoleErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    const queries: { query?: string; documentId?: string }[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/graphql') && request.method() === 'POST') {
        queries.push(request.postDataJSON() as (typeof queries)[number]);
      }
    });
    const sockets: SocketFrames[] = [];
    page.on('websocket', (socket) => {
      const frames: SocketFrames = { sent: [], received: [] };
      sockets.push(frames);
      socket.on('framesent', ({ payload }) =>
        frames.sent.push(JSON.parse(String(payload)) as SocketFrames['sent'][number]),
      );
      socket.on('framereceived', ({ payload }) =>
        frames.received.push(JSON.parse(String(payload)) as SocketFrames['received'][number]),
      );
    });
    await page.goto(`${relay.url}/?token=${encodeURIComponent(viewer)}`);
    // The token moves to sessionStorage and out of the address bar (and of history).
    expect(new URL(page.url()).search).toBe('');
    const state = () => page.locator('#connection').getAttribute('data-state');
    const shown = (code: string) =>
      page.locator(`[data-kpi="${code}"] .tile-value`).getAttribute('data-value');
    await expect.poll(state, { timeout: 15_000 }).toBe('live');
    // A new document would have a new time origin: it stays the same unless the page reloads.
    const documentOrigin = await page.evaluate(() => performance.timeOrigin);
    expect(await page.locator('[data-kpi="visits"] h3').textContent()).toBe('Visits');
    expect(await page.locator('[data-kpi="checkout.revenue"] .tile-unit').textContent()).toBe('EUR');
    // Each tile's sparkline is a uPlot chart.
    expect(await page.locator('[data-kpi="visits"] .tile-spark canvas').count()).toBe(1);

    await visits(5);
    await ingest([
      { name: 'checkout.completed', attributes: { amount: 19.5 } },
      { name: 'checkout.completed', attributes: { amount: 23 } },
    ]);
    await expect.poll(() => shown('visits'), { timeout: 20_000 }).toBe('5');
    await expect.poll(() => shown('checkout.revenue'), { timeout: 20_000 }).toBe('42.5');
    const firstSocket = sockets.at(-1)!;

    relay.cut();
    await expect.poll(state, { timeout: 10_000 }).toBe('reconnecting');
    // One subscription follows every KPI, so its cursor is that of the last value of any KPI received.
    const lastCursorBeforeCut = kpiValues(firstSocket).at(-1)!.cursor;
    await visits(7);
    // The value 12 exists while the page cannot reach the gateway: it can only come from the resume.
    await expect.poll(() => currentValue('visits'), { timeout: 20_000 }).toBe(12);
    const cutShot = join(tmpdir(), 'pulsegraph-dashboard-reconnecting.png');
    await page.screenshot({ path: cutShot, fullPage: true });
    expect(await shown('visits')).toBe('5');

    relay.restore();
    await expect.poll(state, { timeout: 30_000 }).toBe('live');
    await expect.poll(() => shown('visits'), { timeout: 20_000 }).toBe('12');
    const resumedSocket = sockets.at(-1)!;
    expect(resumedSocket).not.toBe(firstSocket);
    // The re-subscription carried the last cursor the page had been given.
    expect(kpiSubscription(firstSocket)?.['after']).toBeNull();
    expect(kpiSubscription(resumedSocket)?.['after']).toBe(lastCursorBeforeCut);

    await visits(3);
    await expect.poll(() => shown('visits'), { timeout: 20_000 }).toBe('15');
    // Across both sockets: no value twice, none going back, and the tile equals the count of events.
    const delivered = sockets.flatMap((frames) => kpiValues(frames, 'visits'));
    const cursors = delivered.map((value) => value.cursor);
    expect(new Set(cursors).size).toBe(cursors.length);
    const values = delivered.map((value) => value.value);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(values.at(-1)).toBe(15);
    expect(await currentValue('visits')).toBe(15);

    // Every operation went by its id in the persisted-operation manifest, never as text.
    const manifest = Object.keys(
      JSON.parse(await readFile('dashboard/src/gql/persisted-documents.json', 'utf8')) as object,
    );
    const subscribes = sockets.flatMap((frames) => frames.sent.filter((frame) => frame.type === 'subscribe'));
    expect(queries.length).toBeGreaterThan(1);
    expect(subscribes.length).toBeGreaterThan(2);
    for (const operation of [...queries, ...subscribes.map((frame) => frame.payload!)]) {
      expect(manifest).toContain(operation.documentId);
      expect(operation.query || undefined).toBeUndefined();
    }

    // One document the whole time: the page was never reloaded.
    expect(await page.evaluate(() => performance.timeOrigin)).toBe(documentOrigin);
    expect(pageErrors).toEqual([]);
    // While the relay refused connections Chromium logs the failed WebSocket attempts; nothing else.
    expect(consoleErrors.filter((text) => !/WebSocket connection to .* failed/.test(text))).toEqual([]);

    const shot = join(tmpdir(), 'pulsegraph-dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`dashboard screenshots: ${cutShot} (cut), ${shot} (resumed)\n${await describePage(page)}`);
    await page.close();
  }, 120_000);

  it("shows a report's progress live as a worker generates it", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    try {
      const { createReport } = await admin<{ createReport: { id: string } }>(
        `mutation ($input: CreateReportInput!) { createReport(input: $input) { id } }`,
        {
          input: {
            name: 'Visits today',
            type: 'ADHOC',
            format: 'CSV',
            config: {
              metrics: ['visits'],
              timeRange: {
                start: new Date(Date.now() - 3_600_000).toISOString(),
                end: new Date().toISOString(),
              },
            },
          },
        },
      );
      await page.goto(`${relay.url}/?token=${encodeURIComponent(viewer)}`);
      const row = page.locator(`[data-report="${createReport.id}"]`);
      await expect
        .poll(() => row.locator('.report-status').textContent(), { timeout: 15_000 })
        .toBe('never run');
      await expect.poll(() => page.locator('#connection').getAttribute('data-state')).toBe('live');
      // Generated once the page's progress subscription has reached Redis, so every event is live.
      const redis = createRedisPubSub(platform.config.REDIS_URL!);
      const channel = reportProgressChannel('acme', createReport.id);
      const listening = async () =>
        ((await redis.getPublisher().pubsub('NUMSUB', channel)) as [string, number])[1];
      await expect.poll(listening, { timeout: 10_000 }).toBe(1);
      await redis.close();
      await admin(`mutation ($id: ID!) { generateReport(id: $id) { id } }`, { id: createReport.id });
      await expect
        .poll(() => row.locator('.report-status').textContent(), { timeout: 30_000 })
        .toBe('completed');
      expect(await row.locator('progress').evaluate((bar) => (bar as HTMLProgressElement).value)).toBe(1);
      const shot = join(tmpdir(), 'pulsegraph-dashboard-report.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`report screenshot: ${shot}\n${await describePage(page)}`);
    } finally {
      await page.close();
    }
  }, 60_000);
});
