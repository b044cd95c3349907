// CPU pinning for benchmarks that put the server under test on one core and its clients on another,
// and the CPU time a process has used (from /proc), to compare servers by work per operation.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
