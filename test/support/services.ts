// What test files use of the shared services started by test/globalSetup.ts.
import { inject } from 'vitest';
import { createScratchDatabase, type ScratchDatabase } from '../../scripts/scratchDatabase.ts';

/** The password of pulsegraph_app in tests; one value because the role is shared by the whole cluster. */
export const TEST_APP_PASSWORD = 'pulsegraph-test-app';

/** The URLs of the shared Postgres (superuser, `pulsegraph` database), NATS and Redis. */
export function services(): { pgAdminUrl: string; natsUrl: string; redisUrl: string } {
  return { pgAdminUrl: inject('pgAdminUrl'), natsUrl: inject('natsUrl'), redisUrl: inject('redisUrl') };
}

/** A migrated database of its own for one test file. */
export type TestDatabase = ScratchDatabase;

/** Creates and migrates a fresh database on the shared cluster. */
export function createTestDatabase(): Promise<TestDatabase> {
  return createScratchDatabase(services().pgAdminUrl, TEST_APP_PASSWORD);
}
