// Builds the dashboard with Vite when its output is missing or older than its sources. `npm start`
// runs it before the gateway starts (about 3 s the first time, nothing when up to date); the browser
// test builds into a directory of its own.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** The dashboard's folder (Vite's root). */
export const dashboardRoot = import.meta.dirname;

const mtimeOf = (path: string) =>
  stat(path).then(
    (info) => info.mtimeMs,
    () => 0,
  );

/** The newest modification time of anything under dir. */
async function newestUnder(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const times = await Promise.all(entries.map((entry) => mtimeOf(join(entry.parentPath, entry.name))));
  return Math.max(0, ...times);
}

/** Builds the dashboard into outDir (absolute, or relative to the dashboard folder). */
export async function buildDashboard(outDir: string): Promise<void> {
  // Imported here: a gateway or an up-to-date start never loads Vite.
  const { build } = await import('vite');
  await build({
    configFile: join(dashboardRoot, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
}

/** Builds into outDir unless its index.html is newer than every source; says whether it built. */
export async function ensureDashboardBuilt(outDir: string): Promise<boolean> {
  const built = await mtimeOf(join(outDir, 'index.html'));
  const sources = Math.max(
    await newestUnder(join(dashboardRoot, 'src')),
    await newestUnder(join(dashboardRoot, 'public')),
    await mtimeOf(join(dashboardRoot, 'index.html')),
    await mtimeOf(join(dashboardRoot, 'vite.config.ts')),
    // New dependency versions (uPlot, graphql-ws) change the bundle too.
    await mtimeOf(join(dashboardRoot, '..', 'package-lock.json')),
  );
  if (built > sources) return false;
  await buildDashboard(outDir);
  return true;
}
