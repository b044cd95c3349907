import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from '../lib/logger.ts';

/** Folder of the versioned SQL migrations, applied in file-name order. */
export const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));

// One constant key: every process migrating the same database waits on the same advisory lock.
const LOCK_KEY = 7_461_023_117;

/** Options of one migration run. */
export interface MigrateOptions {
  /** A URL of a role allowed to create tables and roles (the owner or a superuser). */
  adminUrl: string;
  /** When given, the application role pulsegraph_app may log in with this password. */
  appPassword?: string;
  logger?: Logger;
  dir?: string;
}

/** Raised when the migrations on disk disagree with what the database has applied. */
export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** Applies every pending migration, each in its own transaction, under a database-wide advisory lock. */
export async function migrate(options: MigrateOptions): Promise<{ applied: string[] }> {
  const dir = options.dir ?? migrationsDir;
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
  const client = new pg.Client({ connectionString: options.adminUrl });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = await client.query<{ version: string; checksum: string }>(
      'SELECT version, checksum FROM schema_migrations',
    );
    const known = new Map(done.rows.map((r) => [r.version, r.checksum]));
    for (const file of files) {
      const sql = await readFile(join(dir, file), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      const version = file.slice(0, 4);
      const previous = known.get(version);
      if (previous !== undefined) {
        if (previous !== checksum) {
          throw new MigrationError(
            `migration ${file} was changed after it was applied; add a new migration instead`,
          );
        }
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          version,
          file,
          checksum,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new MigrationError(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
      }
      applied.push(file);
      options.logger?.info({ migration: file }, 'migration applied');
    }
    if (options.appPassword !== undefined) {
      await client.query(
        `ALTER ROLE pulsegraph_app WITH LOGIN PASSWORD ${client.escapeLiteral(options.appPassword)}`,
      );
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
  return { applied };
}

async function main(): Promise<void> {
  const { loadConfigOrExit } = await import('../lib/config.ts');
  const { createLogger } = await import('../lib/logger.ts');
  const config = loadConfigOrExit();
  const adminUrl = config.DATABASE_ADMIN_URL ?? config.DATABASE_URL;
  if (!adminUrl) {
    process.stderr.write(
      'pulsegraph: missing setting DATABASE_ADMIN_URL or DATABASE_URL: migrate needs one\n',
    );
    process.exit(1);
  }
  const logger = createLogger('migrate', config.LOG_LEVEL);
  const { applied } = await migrate({ adminUrl, appPassword: config.DATABASE_APP_PASSWORD, logger });
  logger.info({ applied: applied.length }, applied.length ? 'migrations applied' : 'database is up to date');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`pulsegraph: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
