// Reads that tolerate a little replication lag (rollup series, report scans, insight listings) can go to a
// read replica, DATABASE_READ_URL. Everything else stays on DATABASE_URL: a read right after a write of the
// same caller, claims, locks and dedup (docs/scaling.md).
import type pg from 'pg';
import { observeReplicaLag, replicaFallbacks } from '../lib/metrics.ts';
import type { Logger } from '../lib/logger.ts';
import { assertRowLevelSecurity, createPool, RowLevelSecurityBypass, type Connectable } from './pool.ts';

/** After the replica refused a connection, reads use the primary for this long before trying it again. */
export const REPLICA_RETRY_MS = 10_000;

/**
 * Why a read that failed on the replica may run again on the primary: its connection was lost (the
 * replica restarting, failing over, a network cut), or the standby cancelled it to go on replaying WAL
 * (a recovery conflict, SQLSTATE 40001 or 40P01 on a standby). Undefined for every other failure, which
 * would fail on the primary alike.
 */
export function replicaFailure(error: unknown): 'connection_lost' | 'recovery_conflict' | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code === '40001' || code === '40P01') return 'recovery_conflict';
  if (typeof code === 'string' && (code.startsWith('08') || /^57P0[123]$/.test(code)))
    return 'connection_lost';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT') return 'connection_lost';
  if (typeof message === 'string' && /^Connection terminated|not queryable/.test(message))
    return 'connection_lost';
  return undefined;
}

/** A pool for lag-tolerant reads, and how to end it. */
export interface ReadPool extends Connectable {
  /** Whether reads go to a replica (DATABASE_READ_URL) rather than the primary itself. */
  replica: boolean;
  end(): Promise<void>;
}

/**
 * The pool for lag-tolerant reads: the primary itself without a replica URL; with one, a pool of the
 * replica whose connections fall back to the primary while the replica cannot be reached (counted in
 * `pulsegraph_db_replica_fallback_total`), trying it again after REPLICA_RETRY_MS. The replica's role
 * is held to the primary's rule (no way around row-level security) before its first read, and a role
 * that breaks it stops the service at start, or fails the read.
 */
export async function createReadPool(
  primary: pg.Pool,
  replicaUrl: string | undefined,
  options: {
    max: number;
    name: string;
    logger: Logger;
    /** How long reads stay on the primary after the replica could not be reached (REPLICA_RETRY_MS). */
    retryMs?: number;
  },
): Promise<ReadPool> {
  const retryMs = options.retryMs ?? REPLICA_RETRY_MS;
  if (!replicaUrl) return { replica: false, connect: () => primary.connect(), end: () => Promise.resolve() };
  const replica = createPool(replicaUrl, options.max, `${options.name}-replica`);
  let verified: Promise<void> | undefined;
  const verify = (client: pg.PoolClient) =>
    (verified ??= assertRowLevelSecurity(client, 'DATABASE_READ_URL').catch((error: unknown) => {
      verified = undefined;
      throw error;
    }));
  let primaryUntil = 0;
  const primaryOnly: Connectable = { connect: () => primary.connect() };
  const onPrimary = (error?: unknown) => {
    if (error !== undefined) {
      primaryUntil = Date.now() + retryMs;
      options.logger.warn(
        { err: error, retryInMs: retryMs },
        'read replica unreachable: its reads go to the primary',
      );
    }
    replicaFallbacks.inc({ pool: options.name, reason: 'unreachable' });
    return primary.connect();
  };
  const fromReplica = new WeakSet<pg.PoolClient>();
  const connectReplica = async () => {
    const client = await replica.connect();
    try {
      await verify(client);
    } catch (error) {
      client.release();
      throw error;
    }
    fromReplica.add(client);
    return client;
  };
  const readPool: ReadPool = {
    replica: true,
    async connect() {
      if (Date.now() < primaryUntil) return onPrimary();
      try {
        return await connectReplica();
      } catch (error) {
        if (error instanceof RowLevelSecurityBypass) throw error;
        return onPrimary(error);
      }
    },
    retryReadOn(client, error) {
      const reason = fromReplica.has(client) ? replicaFailure(error) : undefined;
      if (!reason) return undefined;
      options.logger.warn(
        { err: error, reason },
        'a read failed on the read replica: it runs again on the primary',
      );
      replicaFallbacks.inc({ pool: options.name, reason });
      return primaryOnly;
    },
    end: () => {
      stopLag();
      return replica.end();
    },
  };
  const stopLag = observeReplicaLag(options.name, () => replicaLag(primary, replica));
  // At start: a replica that is down is only logged (its reads go to the primary), a role that could
  // read across tenants stops the service.
  try {
    (await connectReplica()).release();
  } catch (error) {
    if (error instanceof RowLevelSecurityBypass) {
      await readPool.end();
      throw error;
    }
    primaryUntil = Date.now() + retryMs;
    options.logger.warn({ err: error }, 'read replica unreachable at start: its reads go to the primary');
  }
  return readPool;
}

/**
 * How far the replica is behind the primary: the WAL bytes it has yet to replay, and the age of the last
 * transaction it replayed while bytes remain (zero once it has replayed everything the primary wrote).
 */
async function replicaLag(primary: pg.Pool, replica: pg.Pool): Promise<{ seconds: number; bytes: number }> {
  const { rows: written } = await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const { rows } = await replica.query<{ bytes: string | null; seconds: number | null }>(
    `SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()) AS bytes,
            extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 AS seconds`,
    [written[0]!.lsn],
  );
  const bytes = Math.max(0, Number(rows[0]?.bytes ?? 0));
  return { bytes, seconds: bytes > 0 ? Math.max(0, rows[0]?.seconds ?? 0) : 0 };
}
