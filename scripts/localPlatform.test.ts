// A local platform that fails to start leaves nothing behind: its nats-server, its database and its
// directory go with the failure, as they go with stop().
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { services, TEST_APP_PASSWORD } from '../test/support/services.ts';
import { startLocalPlatform } from './localPlatform.ts';
import { ownerLine } from './scratchDir.ts';

/** This process's children named `name` (from /proc). */
async function children(name: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...
    const match = /^\d+ \((.*)\) \S (\d+) /.exec(stat);
    if (match?.[1] === name && Number(match[2]) === process.pid) pids.push(Number(entry));
  }
  return pids;
}

/** Scratch directories this process made that are still there. */
async function ownDirectories(): Promise<string[]> {
  const mine: string[] = [];
  for (const entry of await readdir(tmpdir())) {
    if (!entry.startsWith('pulsegraph-local-')) continue;
    const owner = await readFile(join(tmpdir(), entry, '.pulsegraph-owner'), 'utf8').catch(() => '');
    if (owner === ownerLine(process.pid)) mine.push(entry);
  }
  return mine;
}

describe('startLocalPlatform', () => {
  it('stops what it started when starting fails halfway', async () => {
    const { pgAdminUrl, redisUrl } = services();
    let database = '';
    // Watched while it starts, to show the failure came after nats-server was running.
    let natsRan = false;
    const watch = setInterval(
      () => void children('nats-server').then((pids) => (natsRan ||= pids.length > 0)),
      20,
    );
    await expect(
      startLocalPlatform({
        clusterAdminUrl: pgAdminUrl,
        appPassword: TEST_APP_PASSWORD,
        redisUrl,
        // A superuser as the read replica: every subgraph refuses it at start, after nats-server started.
        readReplica: (appUrl) => {
          database = new URL(appUrl).pathname.slice(1);
          return Promise.resolve(pgAdminUrl);
        },
      }),
    ).rejects.toThrow(/^invalid setting DATABASE_READ_URL/);
    clearInterval(watch);
    expect(database).toMatch(/^pg_scratch_/);
    expect(await children('nats-server')).toEqual([]);
    expect(await ownDirectories()).toEqual([]);
    const admin = new pg.Client({ connectionString: pgAdminUrl });
    await admin.connect();
    try {
      const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      expect(rows).toEqual([]);
    } finally {
      await admin.end();
    }
    expect(natsRan).toBe(true);
  });
});
