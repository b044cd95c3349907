import pg from 'pg';
import { observePool } from '../lib/metrics.ts';
import { ATTR_COMPONENT, ATTR_TENANT, SpanKind, withSpan } from '../lib/telemetry.ts';

/** A transaction client whose every statement is confined to one tenant by row-level security. */
export type TenantClient = pg.PoolClient;

/** Where transactions get their client: a pool, or the read pool of db/readPool.ts. */
export interface Connectable {
  connect(): Promise<pg.PoolClient>;
  /**
   * Where a read that failed on `client` with `error` may run again, if anywhere: the read pool sends a
   * read whose replica connection was lost, or that a hot standby cancelled, to the primary.
   */
  retryReadOn?(client: pg.PoolClient, error: unknown): Connectable | undefined;
}

/** The role of a connection could read across tenants: a setting to fix, never a reason to fall back. */
export class RowLevelSecurityBypass extends Error {}

/**
 * Creates the service's connection pool (the application role, never an owner or superuser); its
 * saturation shows on /metrics under `name`.
 */
export function createPool(connectionString: string, max = 10, name = 'app'): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
  });
  // A client losing its connection must not crash the process. pg emits 'error' on a client whose
  // connection ends, even when the statement running gets the error too; the pool listens only while the
  // client is idle (and then replaces it), so each client also keeps a listener of its own for the time
  // it is lent: the next statement fails, and the pool discards the client when it comes back.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  observePool(pool, name);
  return pool;
}

/**
 * Runs fn in one transaction with app.tenant_id set for it alone; commits on success, rolls back on error.
 * The transaction is one `postgres transaction` span (waiting for a pool client included).
 */
export function withTenant<T>(
  pool: Connectable,
  tenant: string,
  fn: (client: TenantClient) => Promise<T>,
): Promise<T> {
  return inTransaction(pool, tenant, fn, { readOnly: false });
}

/**
 * withTenant for reads: a READ ONLY transaction (a write in fn fails), answered as soon as fn has its rows.
 * Its COMMIT is not waited for: a read's rows stand whether or not the commit arrives, and the client goes
 * back to the pool (or, if the commit fails, is discarded) once it has. One round trip less per read.
 */
export function withTenantRead<T>(
  pool: Connectable,
  tenant: string,
  fn: (client: TenantClient) => Promise<T>,
): Promise<T> {
  return inTransaction(pool, tenant, fn, { readOnly: true });
}

/**
 * withTenantRead whose first statement, `opening` (SQL without parameters), travels in the round trip of
 * BEGIN and the tenant setting; fn gets its rows. For a read that always starts with the same query.
 */
export function withTenantReadFrom<R, T>(
  pool: Connectable,
  tenant: string,
  opening: string,
  fn: (client: TenantClient, rows: R[]) => Promise<T>,
): Promise<T> {
  return inTransaction(pool, tenant, (client, rows) => fn(client, rows as R[]), { readOnly: true, opening });
}

/** One `postgres transaction` span (waiting for a pool client included); a read-only one is not awaited to commit. */
function inTransaction<T>(
  pool: Connectable,
  tenant: string,
  fn: (client: TenantClient, openingRows: unknown[]) => Promise<T>,
  mode: { readOnly: boolean; opening?: string },
): Promise<T> {
  return withSpan(
    'postgres transaction',
    {
      kind: SpanKind.CLIENT,
      attributes: { [ATTR_COMPONENT]: 'postgres', [ATTR_TENANT]: tenant, 'db.system.name': 'postgresql' },
    },
    async () => {
      const client = await pool.connect();
      let result: T;
      try {
        // One round trip: BEGIN, the tenant setting (the tenant quoted as a literal by the driver) and the
        // opening statement, if any, as one simple-protocol query.
        const statements = [
          mode.readOnly ? 'BEGIN READ ONLY' : 'BEGIN',
          `SELECT set_config('app.tenant_id', ${client.escapeLiteral(tenant)}, true)`,
        ];
        if (mode.opening) statements.push(mode.opening);
        const results = (await client.query(statements.join('; '))) as unknown as pg.QueryResult[];
        result = await fn(client, mode.opening ? results[2]!.rows : []);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release();
        const elsewhere = mode.readOnly ? pool.retryReadOn?.(client, error) : undefined;
        if (elsewhere) return inTransaction(elsewhere, tenant, fn, mode);
        throw error;
      }
      const committed = client.query('COMMIT').then(
        () => client.release(),
        (error: Error) => {
          client.release(error);
          throw error;
        },
      );
      if (!mode.readOnly) await committed;
      else committed.catch(() => undefined); // the rows are already read; the client is discarded
      return result;
    },
  );
}

/** Refuses to run as a role that could read across tenants (superuser, BYPASSRLS, or a table owner). */
export async function assertRowLevelSecurity(
  pool: pg.Pool | pg.PoolClient,
  setting = 'DATABASE_URL',
): Promise<void> {
  const { rows } = await pool.query<{
    rolname: string;
    rolsuper: boolean;
    rolbypassrls: boolean;
    owns: boolean;
  }>(
    `SELECT r.rolname, r.rolsuper, r.rolbypassrls,
            EXISTS (SELECT FROM pg_tables WHERE tableowner = r.rolname AND schemaname = 'public') AS owns
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const role = rows[0];
  if (!role || role.rolsuper || role.rolbypassrls || role.owns) {
    throw new RowLevelSecurityBypass(
      `invalid setting ${setting}: role ${role?.rolname ?? '?'} can bypass row-level security; connect as pulsegraph_app`,
    );
  }
}

/** Answers whether the database accepts queries (for readiness). */
export async function pingDatabase(pool: pg.Pool): Promise<boolean> {
  try {
    await pool.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}
