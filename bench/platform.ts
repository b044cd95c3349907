// The real platform for a benchmark: a throwaway Postgres cluster under a directory of the bench and the
// local platform on it (subgraphs and gateway in this process, NATS and Redis as children), stopped together.
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalPlatform, type LocalPlatform } from '../scripts/localPlatform.ts';
import { startPostgres } from '../scripts/localServices.ts';

/** A started bench platform. */
export interface BenchPlatform {
  platform: LocalPlatform;
  /** Stops the platform, removes its data and stops Postgres. */
  stop(): Promise<void>;
}

/** Starts Postgres under dir/pg and the platform on it (no workers unless options ask for them). */
export async function startBenchPlatform(
  dir: string,
  options: { logLevel?: string; env?: Record<string, string> } = {},
): Promise<BenchPlatform> {
  await chmod(dir, 0o755); // Postgres runs as its own user: it must reach its data directory in dir
  const postgres = await startPostgres({ dataDir: join(dir, 'pg'), persistent: false });
  try {
    const platform = await startLocalPlatform({
      clusterAdminUrl: postgres.adminUrl,
      appPassword: 'bench-app',
      ...options,
    });
    return {
      platform,
      async stop() {
        await platform.stop();
        await rm(platform.dataDir, { recursive: true, force: true });
        await postgres.stop();
      },
    };
  } catch (error) {
    await postgres.stop();
    throw error;
  }
}
