// Starts the real services the suite runs against, once per run, each on a free port in a temporary directory.
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startNats, startPostgres, startRedis } from '../scripts/localServices.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

/** Starts Postgres, nats-server (JetStream) and redis-server; provides their URLs; returns the teardown. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await scratchDir('test');
  // mkdtemp makes the directory 0700; as root, Postgres runs as the 'postgres' user and must enter it.
  await chmod(root, 0o755);
  const started = await Promise.allSettled([
    startPostgres({ dataDir: join(root, 'pg'), persistent: false }),
    startNats({ storeDir: join(root, 'nats') }),
    startRedis({ dir: join(root, 'redis') }),
  ]);
  const teardown = async () => {
    for (const result of [...started].reverse()) {
      if (result.status === 'fulfilled') await result.value.stop();
    }
    await rm(root, { recursive: true, force: true });
  };
  const [postgres, nats, redis] = started;
  if (postgres?.status !== 'fulfilled' || nats?.status !== 'fulfilled' || redis?.status !== 'fulfilled') {
    const reason: unknown = started.find((result) => result.status === 'rejected')?.reason;
    await teardown();
    throw reason instanceof Error ? reason : new Error(`a test service did not start: ${String(reason)}`);
  }
  project.provide('pgAdminUrl', postgres.value.adminUrl);
  project.provide('natsUrl', nats.value.url);
  project.provide('redisUrl', redis.value.url);
  return teardown;
}
