// Scratch databases on a Postgres cluster, for tests and benchmarks: created, migrated, dropped.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../db/migrate.ts';

// Serialises migrations across parallel callers: pulsegraph_app is cluster-wide, and two migrations
// creating it at once in different databases would collide.
const MIGRATION_LOCK_KEY = 7_461_023_118;

/** A migrated database of its own, for one test file or one benchmark run. */
export interface ScratchDatabase {
  name: string;
  /** Superuser URL: for setup and for asserting on raw tables. */
  adminUrl: string;
  /** URL of pulsegraph_app, the role the services use (row-level security applies). */
  appUrl: string;
  /** Drops the database, closing any connection still open to it. */
  drop(): Promise<void>;
}

/**
 * Creates and migrates a fresh database `pg_scratch_<random>` on a cluster, given a superuser URL;
 * pulsegraph_app logs in with appPassword (one value: the role is shared by the whole cluster).
 */
export async function createScratchDatabase(
  clusterAdminUrl: string,
  appPassword: string,
): Promise<ScratchDatabase> {
  const name = `pg_scratch_${randomBytes(6).toString('hex')}`;
  const adminUrl = withDatabase(clusterAdminUrl, name);
  const onMaintenanceDatabase = (work: (client: pg.Client) => Promise<unknown>) =>
    onDatabase(withDatabase(clusterAdminUrl, 'postgres'), work);
  await onMaintenanceDatabase(async (client) => {
    await client.query(`CREATE DATABASE ${name}`);
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await migrate({ adminUrl, appPassword });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
  const app = new URL(adminUrl);
  app.username = 'pulsegraph_app';
  app.password = appPassword;
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

// Advisory locks are per database, so every caller takes the migration lock in the same one: `postgres`.
async function onDatabase(url: string, work: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}
