// Scratch directories in the system's temporary directory, for tests, benchmarks and the local platform.
// Each names the process that made it (pid and host); one whose process is gone (a run killed before its
// cleanup ran) is removed by the next process on the same host that makes one. The host keeps a process
// from judging pids it cannot see, as in a container that shares the temporary directory.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'pulsegraph-';
const OWNER_FILE = '.pulsegraph-owner';

let swept: Promise<unknown> | undefined;

/**
 * Makes `<tmp>/pulsegraph-<name>-XXXXXX` (0700), once per process after removing scratch directories
 * whose process has exited. The caller removes it when done.
 */
export async function scratchDir(name: string): Promise<string> {
  await (swept ??= removeAbandoned().catch(() => []));
  const dir = await mkdtemp(join(tmpdir(), `${PREFIX}${name}-`));
  await writeFile(join(dir, OWNER_FILE), ownerLine(process.pid));
  return dir;
}

/** What a scratch directory's owner file holds: `<pid> <host>`. */
export const ownerLine = (pid: number, host = hostname()): string => `${pid} ${host}`;

/**
 * Removes the scratch directories under root whose owner file names a process of this host that no
 * longer runs; answers their paths. A directory without an owner file, of another host, or whose process
 * runs, is left alone.
 */
export async function removeAbandoned(root = tmpdir()): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true });
  const removed: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || !entry.name.startsWith(PREFIX)) continue;
    const dir = join(root, entry.name);
    const [pidText, host] = (await readFile(join(dir, OWNER_FILE), 'utf8').catch(() => '')).split(' ');
    const pid = Number(pidText);
    if (host !== hostname() || !Number.isInteger(pid) || pid <= 0 || running(pid)) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}
