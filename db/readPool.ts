// Reads that tolerate a little replication lag (rollup series, report scans, insight listings) can go to a
// read replica, DATABASE_READ_URL. Everything else stays on DATABASE_URL: a read right after a write of the
// same caller, claims, locks and dedup (docs/scaling.md).
import type pg from 'pg';
import { replicaFallbacks } from '../lib/metrics.ts';
import type { Logger } from '../lib/logger.ts';
import { assertRowLevelSecurity, createPool, type Connectable } from './pool.ts';

/** After the replica refused a connection, reads use the primary for this long before trying it again. */
export const REPLICA_RETRY_MS = 10_000;

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
  options: { max: number; name: string; logger: Logger },
): Promise<ReadPool> {
  if (!replicaUrl) return { replica: false, connect: () => primary.connect(), end: () => Promise.resolve() };
  const replica = createPool(replicaUrl, options.max, `${options.name}-replica`);
  let verified: Promise<void> | undefined;
  const verify = (client: pg.PoolClient) =>
    (verified ??= assertRowLevelSecurity(client, 'DATABASE_READ_URL').catch((error: unknown) => {
      verified = undefined;
      throw error;
    }));
  let primaryUntil = 0;
  const onPrimary = (error?: unknown) => {
    if (error !== undefined) {
      primaryUntil = Date.now() + REPLICA_RETRY_MS;
      options.logger.warn(
        { err: error, retryInMs: REPLICA_RETRY_MS },
        'read replica unreachable: its reads go to the primary',
      );
    }
    replicaFallbacks.inc({ pool: options.name });
    return primary.connect();
  };
  const connectReplica = async () => {
    const client = await replica.connect();
    try {
      await verify(client);
      return client;
    } catch (error) {
      client.release();
      throw Object.assign(error as Error, { refused: true });
    }
  };
  const readPool: ReadPool = {
    replica: true,
    async connect() {
      if (Date.now() < primaryUntil) return onPrimary();
      try {
        return await connectReplica();
      } catch (error) {
        if ((error as { refused?: boolean }).refused) throw error;
        return onPrimary(error);
      }
    },
    end: () => replica.end(),
  };
  // At start: a replica that is down is only logged (its reads go to the primary), a role that could
  // read across tenants stops the service.
  try {
    (await connectReplica()).release();
  } catch (error) {
    if ((error as { refused?: boolean }).refused) {
      await replica.end();
      throw error;
    }
    primaryUntil = Date.now() + REPLICA_RETRY_MS;
    options.logger.warn({ err: error }, 'read replica unreachable at start: its reads go to the primary');
  }
  return readPool;
}
