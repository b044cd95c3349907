import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** How a child process ended. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options of spawnTied. */
export interface SpawnTiedOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdio?: StdioOptions;
  /** The signal that asks this child to stop gracefully; also what it receives if the parent dies. */
  stopSignal?: NodeJS.Signals;
}

// Every child we started and that has not exited yet, with the signal that stops it.
const live = new Map<ChildProcess, NodeJS.Signals>();
let exitHookInstalled = false;

/** The absolute path of an executable found on PATH, or undefined. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

// setpriv (util-linux) sets PR_SET_PDEATHSIG before exec: the kernel signals the child when we die,
// even by SIGKILL, which no 'exit' handler can cover.
const setpriv = process.platform === 'linux' ? findOnPath('setpriv') : undefined;

/**
 * Spawns a child that never outlives this process: tracked and signalled on 'exit', and on Linux also
 * tied by the kernel. Tied children get their own process group so a terminal Ctrl-C reaches only us
 * and we stop them in order; untied ones stay in our group so the terminal's signals still reach them.
 */
export function spawnTied(command: string, args: string[], options: SpawnTiedOptions = {}): ChildProcess {
  const stopSignal = options.stopSignal ?? 'SIGTERM';
  const tied = tiedCommand(command, args, stopSignal);
  const child = spawn(tied.command, tied.args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: options.stdio ?? 'pipe',
    detached: tied.detached,
  });
  track(child, stopSignal);
  return child;
}

/** The command line and process-group choice that tie a child to this process (see spawnTied). */
export function tiedCommand(
  command: string,
  args: string[],
  deathSignal: NodeJS.Signals,
): { command: string; args: string[]; detached: boolean } {
  if (!setpriv) return { command, args, detached: false };
  return { command: setpriv, args: ['--pdeathsig', deathSignal, '--', command, ...args], detached: true };
}

/** Remembers a child started elsewhere (e.g. by a library) so it is signalled when this process exits. */
export function track(child: ChildProcess, stopSignal: NodeJS.Signals): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous: we can only send the signal, not wait for the child.
    process.on('exit', () => {
      for (const [proc, signal] of live) proc.kill(signal);
    });
  }
  if (hasExited(child)) return;
  live.set(child, stopSignal);
  child.once('exit', () => live.delete(child));
}

/** Every tracked child that is still running. */
export function liveChildren(): ChildProcess[] {
  return [...live.keys()];
}

/** True once the child has exited (its 'exit' event has fired or is due). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves when the child has exited; at once if it already has. */
export function waitForExit(child: ChildProcess): Promise<ExitStatus> {
  if (hasExited(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Sends signal, waits up to timeoutMs for the child to exit, then SIGKILLs it and waits again. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  timeoutMs = 5000,
): Promise<ExitStatus> {
  if (hasExited(child)) return waitForExit(child);
  const exited = waitForExit(child);
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>(
    (resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)),
  );
  const first = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (first !== 'timeout') return first;
  child.kill('SIGKILL');
  return exited;
}

/**
 * Calls onLine with each line a stream writes, whole: a line (or a UTF-8 character) split across chunks
 * is put back together, and a last line without a newline comes at the end. Returns a function that stops.
 */
export function eachLine(stream: Readable, onLine: (line: string) => void): () => void {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const onData = (chunk: Buffer) => {
    const lines = (partial + decoder.write(chunk)).split('\n');
    partial = lines.pop()!;
    for (const line of lines) onLine(line);
  };
  const onEnd = () => {
    const last = partial + decoder.end();
    partial = '';
    if (last) onLine(last);
  };
  stream.on('data', onData).on('end', onEnd);
  return () => void stream.off('data', onData).off('end', onEnd);
}

/**
 * Waits for the first line of the child's stdout that `match` accepts (trimmed) and resolves with what
 * it returned; rejects with `name` and the child's `output` if the child exits first.
 */
export function firstLine<T>(
  child: ChildProcess,
  name: string,
  output: () => string,
  match: (line: string) => T | undefined,
): Promise<T> {
  return Promise.race([
    new Promise<T>((resolve) => {
      const stop = eachLine(child.stdout!, (line) => {
        const found = match(line.trim());
        if (found === undefined) return;
        stop();
        resolve(found);
      });
    }),
    once(child, 'exit').then(() => Promise.reject(new Error(`${name} exited:\n${output()}`))),
  ]);
}

/** Keeps the last lines a child wrote, to explain why it failed. */
export function outputTail(child: ChildProcess, onLine?: (line: string) => void, keep = 30): () => string {
  const lines: string[] = [];
  const collect = (line: string) => {
    if (!line.trim()) return;
    onLine?.(line);
    lines.push(line);
    if (lines.length > keep) lines.shift();
  };
  if (child.stdout) eachLine(child.stdout, collect);
  if (child.stderr) eachLine(child.stderr, collect);
  return () => lines.join('\n');
}

/** Whether a process runs; a zombie (exited, not yet reaped by an init that may never reap it) counts as gone. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user (e.g. postgres started for root).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
