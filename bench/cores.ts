// CPU pinning for benchmarks that put the server under test on one core and its clients on another,
// and the CPU time a process has used (from /proc), to compare servers by work per operation.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { findOnPath } from '../scripts/childProcesses.ts';

const taskset = process.platform === 'linux' ? findOnPath('taskset') : undefined;

/** The CPUs this process may run on, as taskset spells them (e.g. "0-1"), or undefined off Linux. */
function allowedCpus(): string | undefined {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

// Decided once, from the CPUs the process had at start: after pinSelf it may only use one.
const unavailable = ((): string | undefined => {
  if (!taskset) return 'taskset is not installed';
  const cpus = allowedCpus() ?? '';
  const has = (cpu: number) =>
    cpus.split(',').some((range) => {
      const [from, to = from] = range.split('-').map(Number);
      return from! <= cpu && cpu <= to!;
    });
  return has(0) && has(1) ? undefined : `this process may only use CPUs ${cpus || 'unknown'}, not 0 and 1`;
})();

/** Why servers and clients cannot be given cores of their own here, or undefined when they can. */
export function pinningUnavailable(): string | undefined {
  return unavailable;
}

/**
 * Moves every thread of this process (and so every child it starts later) to one core; returns a function
 * that gives the process back the CPUs it had. Does nothing when pinning is unavailable.
 */
export function pinSelf(core: number): () => void {
  const before = allowedCpus();
  if (pinningUnavailable() || !before) return () => undefined;
  const set = (cpus: string) =>
    execFileSync(taskset!, ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
  set(String(core));
  return () => set(before);
}

/** The command line that runs command on one core (unpinned when pinning is unavailable). */
export function onCore(core: number, command: string, args: string[]): [string, string[]] {
  return pinningUnavailable() ? [command, args] : [taskset!, ['-c', String(core), command, ...args]];
}

const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds a process has used so far, or NaN when /proc cannot tell. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return NaN;
  }
}

/** Resident memory of a process in MiB, or NaN when /proc cannot tell. */
export function residentMiB(pid: number): number {
  try {
    const kib = /VmRSS:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib ? Number(kib) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The processes below `root` (children, their children, ...), each with a short name. */
function descendants(root: number): Array<{ pid: number; name: string }> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const below = (pid: number): boolean => {
    for (let at = parents.get(pid); at !== undefined && at > 1; at = parents.get(at))
      if (at === root) return true;
    return false;
  };
  return [...parents.keys()].filter(below).map((pid) => ({ pid, name: processName(pid) }));
}

/** A process's script (for node: the .ts file it runs) or its command, e.g. "subgraphs/metrics/server.ts". */
function processName(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const script = argv.find((arg) => arg.endsWith('.ts'));
    if (script) return script.replace(/^.*?((subgraphs|gateway|streams|scripts|bench|workers)\/)/, '$1');
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * CPU seconds per process name below `root` between the call and the returned function's call (processes
 * of the same name summed, e.g. every postgres backend).
 */
export function cpuOfDescendants(root: number): () => Map<string, number> {
  const before = new Map(descendants(root).map(({ pid }) => [pid, cpuSeconds(pid)]));
  return () => {
    const spent = new Map<string, number>();
    for (const { pid, name } of descendants(root)) {
      const used = cpuSeconds(pid) - (before.get(pid) ?? 0);
      if (Number.isFinite(used)) spent.set(name, (spent.get(name) ?? 0) + used);
    }
    return spent;
  };
}
