// Scratch directories name their process, and the next run removes those whose process is gone.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerLine, removeAbandoned, scratchDir } from './scratchDir.ts';

let root: string;
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'scratch-dir-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('scratch directories', () => {
  it('names the process that made one', async () => {
    const dir = await scratchDir('scratch-test');
    try {
      expect(dir).toMatch(/[/\\]pulsegraph-scratch-test-\w{6}$/);
      expect(await readFile(join(dir, '.pulsegraph-owner'), 'utf8')).toBe(ownerLine(process.pid));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('removes those whose process has exited, and no other', async () => {
    // A pid that was surely in use and has surely exited: a child that already ended.
    const exited = spawnSync(process.execPath, ['-e', '0']).pid;
    const make = async (name: string, owner?: string) => {
      const dir = join(root, name);
      await mkdir(join(dir, 'pg'), { recursive: true });
      if (owner !== undefined) await writeFile(join(dir, '.pulsegraph-owner'), owner);
      return dir;
    };
    const abandoned = await make('pulsegraph-test-abandoned', ownerLine(exited));
    const live = await make('pulsegraph-test-live', ownerLine(process.pid));
    const unowned = await make('pulsegraph-test-unowned');
    // Another host's pid means nothing here (a container sharing /tmp): kept.
    const elsewhere = await make('pulsegraph-test-elsewhere', ownerLine(exited, 'another-host'));
    const other = await make('someone-else', ownerLine(exited));

    expect(await removeAbandoned(root)).toEqual([abandoned]);
    expect(await exists(abandoned)).toBe(false);
    for (const kept of [live, unowned, elsewhere, other]) expect(await exists(kept)).toBe(true);
  });
});
