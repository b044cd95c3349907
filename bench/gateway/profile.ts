// Reads a V8 CPU profile (node --cpu-prof) and tells where the time went: self time by function and by
// package (node_modules/<package>, node: internals, or this repository's own folders).
import { readFile } from 'node:fs/promises';

const ROOT = new URL('../..', import.meta.url).href; // file:///…/ of this repository

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  endTime: number;
  startTime: number;
}

/** Self time of one function or package, in ms and as a share of every sample. */
export interface ProfileEntry {
  name: string;
  ms: number;
  share: number;
}

/** Where a frame's code lives: an npm package, a node: internal, a repository folder, or the VM itself. */
function packageOf(url: string, functionName: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.startsWith('node:')) return 'node: internals';
  if (url.startsWith(ROOT)) return `(ours) ${url.slice(ROOT.length).split('/')[0]}/`;
  return functionName.startsWith('(') ? functionName : '(native/VM)';
}

/**
 * Self time by function and by package, largest first; with a window, only the samples taken between
 * fromEndMs and toEndMs before the profile ended (e.g. a load phase, not the process's start).
 */
export async function summarizeProfile(
  file: string,
  window?: { fromEndMs: number; toEndMs: number },
): Promise<{ functions: ProfileEntry[]; packages: ProfileEntry[] }> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  // Sample times are in µs of the profiled process's clock, from startTime.
  const from = window ? profile.endTime - window.fromEndMs * 1000 : -Infinity;
  const to = window ? profile.endTime - window.toEndMs * 1000 : Infinity;
  let at = profile.startTime;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const functions = new Map<string, number>();
  const packages = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    at += profile.timeDeltas[i] ?? 0;
    if (!node || at < from || at > to) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const short = url.startsWith(ROOT) ? url.slice(ROOT.length) : url.replace(/^.*\/node_modules\//, '');
    const where = url ? `${short}:${lineNumber + 1}` : '';
    const fn = `${functionName || '(anonymous)'} ${where}`.trim();
    functions.set(fn, (functions.get(fn) ?? 0) + ms);
    const pkg = packageOf(url, functionName);
    packages.set(pkg, (packages.get(pkg) ?? 0) + ms);
    total += ms;
  });
  const entries = (map: Map<string, number>) =>
    [...map].map(([name, ms]) => ({ name, ms, share: ms / total })).sort((a, b) => b.ms - a.ms);
  return { functions: entries(functions), packages: entries(packages) };
}
