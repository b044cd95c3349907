// What test files use of the shared services started by test/globalSetup.ts.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { migrate } from '../../db/migrate.ts';

/** The password of pulsegraph_app in tests; one value because the role is shared by the whole cluster. */
export const TEST_APP_PASSWORD = 'pulsegraph-test-app';

// Serialises migrations across parallel test files: pulsegraph_app is cluster-wide, and two migrations
// creating it at once in different databases would collide.
const MIGRATION_LOCK_KEY = 7_461_023_118;

/** The URLs of the shared Postgres (superuser, `pulsegraph` database), NATS and Redis. */
export function services(): { pgAdminUrl: string; natsUrl: string; redisUrl: string } {
  return { pgAdminUrl: inject('pgAdminUrl'), natsUrl: inject('natsUrl'), redisUrl: inject('redisUrl') };
}

/** A migrated database of its own for one test file. */
export interface TestDatabase {
  name: string;
  /** Superuser URL: for setup and for asserting on raw tables. */
  adminUrl: string;
  /** URL of pulsegraph_app, the role the services use (row-level security applies). */
  appUrl: string;
  /** Drops the database, closing any connection still open to it. */
  drop(): Promise<void>;
}

/** Creates and migrates a fresh database `pg_test_<random>` on the shared cluster. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `pg_test_${randomBytes(6).toString('hex')}`;
  const adminUrl = withDatabase(services().pgAdminUrl, name);
  await onMaintenanceDatabase(async (client) => {
    await client.query(`CREATE DATABASE ${name}`);
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await migrate({ adminUrl, appPassword: TEST_APP_PASSWORD });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
  const app = new URL(adminUrl);
  app.username = 'pulsegraph_app';
  app.password = TEST_APP_PASSWORD;
  return {
    name,
    adminUrl,
    appUrl: app.toString(),
    drop: () =>
      onMaintenanceDatabase((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  };
}

function withDatabase(url: string, database: string): string {
  const result = new URL(url);
  result.pathname = `/${database}`;
  return result.toString();
}

// Advisory locks are per database, so every test file takes the migration lock in the same one: `postgres`.
async function onMaintenanceDatabase(work: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: withDatabase(services().pgAdminUrl, 'postgres') });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}
