// The report worker process: jobs from the REPORTS work queue -> report files under DATA_DIR/reports,
// with progress in Postgres (for late readers and the download endpoint) and on Redis (for subscribers).
// Any number of workers share the durable consumer; each runs one job at a time.
import type { JsMsg } from '@nats-io/jetstream';
import type pg from 'pg';
import { assertRowLevelSecurity, createPool, withTenant } from '../../db/pool.ts';
import { createReadPool, type ReadPool } from '../../db/readPool.ts';
import { TENANT_PATTERN } from '../../lib/auth.ts';
import type { Config } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import { createRedisPubSub, type RedisPubSub } from '../../lib/redis.ts';
import { isMainModule, runService, type RunningService } from '../../lib/service.ts';
import { connectBroker, ensureStreams } from '../../streams/connection.ts';
import { consumers, ensureConsumer, pullBatches } from '../../streams/consumers.ts';
import type { Envelope } from '../../streams/envelope.ts';
import { subjects } from '../../streams/subjects.ts';
import { ReportOutputError, writeReportFile } from './output.ts';
import { announce, type ReportJob } from './queue.ts';
import { ReportConfigError, reportDimensions, reportRows, type ReportRowsProgress } from './reportRows.ts';
import { generationStore, reportStore, type GenerationRow } from './store.ts';

/** A generation is failed once it has been started this many times without finishing. */
export const MAX_ATTEMPTS = 5;
// Progress goes to Postgres and Redis at most this often; JetStream hears "still working" this often.
const PROGRESS_INTERVAL_MS = 500;
const HEARTBEAT_MS = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a job needs from its worker. */
interface WorkerDeps {
  pool: pg.Pool;
  /** For the report's values: the read replica if DATABASE_READ_URL is set, else the primary. */
  readPool: ReadPool;
  redis: RedisPubSub;
  dataDir: string;
  logger: Logger;
  /** Aborts the job in progress (shutdown outlasted its grace period): its file is dropped, the job nak'ed. */
  abandon: AbortSignal;
}

/** The generation stopped being RUNNING under us (its report was deleted, or it was failed elsewhere). */
class GenerationGone extends Error {
  override name = 'GenerationGone';
}

const count = (n: number) => n.toLocaleString('en-US');

/** Reads a job message; undefined when it is not one (a poison message). */
function decodeJob(message: JsMsg): { tenant: string; job: ReportJob } | undefined {
  try {
    const body = message.json<Partial<Envelope<Partial<ReportJob>>>>();
    const tenant = body.tenant;
    const { generationId, reportId } = body.payload ?? {};
    if (
      typeof tenant !== 'string' ||
      !TENANT_PATTERN.test(tenant) ||
      message.subject !== subjects.reportJobs(tenant) ||
      typeof generationId !== 'string' ||
      !UUID.test(generationId) ||
      typeof reportId !== 'string'
    ) {
      return undefined;
    }
    return { tenant, job: { generationId, reportId } };
  } catch {
    return undefined;
  }
}

/** Redelivery delay after a transient failure: 1 s, 2 s, 4 s ... up to 30 s. */
const retryDelay = (attempt: number) => Math.min(30_000, 1_000 * 2 ** Math.max(0, attempt - 1));

/**
 * Runs one job to its end and settles its message. Generations already finished are skipped (a
 * redelivered job). A failure of the report itself (report or KPI gone, invalid config, disk error),
 * or any failure on the last allowed attempt, marks it FAILED; other failures (Postgres unreachable)
 * nak it for a later attempt. It is never left RUNNING without its message pending.
 */
export async function runJob(deps: WorkerDeps, message: JsMsg): Promise<void> {
  const decoded = decodeJob(message);
  if (!decoded) {
    deps.logger.error({ seq: message.seq, subject: message.subject }, 'not a report job; terminated');
    message.term();
    return;
  }
  const { tenant, job } = decoded;
  const logger = deps.logger.child({ tenant, generationId: job.generationId });
  const heartbeat = setInterval(() => message.working(), HEARTBEAT_MS);
  let generation: GenerationRow | undefined;
  try {
    generation = await withTenant(deps.pool, tenant, (client) =>
      generationStore.start(client, job.generationId),
    );
    if (!generation) {
      logger.info('generation already finished or gone; skipped');
      message.ack();
      return;
    }
    if (generation.attempts > MAX_ATTEMPTS) {
      await failGeneration(
        deps,
        tenant,
        generation,
        `gave up after ${MAX_ATTEMPTS} attempts: the worker stopped before finishing each time`,
      );
      message.ack();
      return;
    }
    await announceSafely(deps, tenant, generation, logger);
    const output = await generate(deps, tenant, generation, logger);
    const completed = await withTenant(deps.pool, tenant, (client) =>
      generationStore.complete(client, generation!.id, output),
    );
    if (completed) await announceSafely(deps, tenant, completed, logger);
    message.ack();
    logger.info(
      { rows: output.rowCount, bytes: output.byteCount, attempt: generation.attempts },
      'report generated',
    );
  } catch (error) {
    await settleFailure(deps, tenant, generation, message, error, logger);
  } finally {
    clearInterval(heartbeat);
  }
}

/** Streams the report's rows into its file, recording progress at most every PROGRESS_INTERVAL_MS. */
async function generate(deps: WorkerDeps, tenant: string, generation: GenerationRow, logger: Logger) {
  const report = await withTenant(deps.pool, tenant, (client) =>
    reportStore.get(client, generation.reportId),
  );
  if (!report) throw new GenerationGone(`report ${generation.reportId} no longer exists`);
  let reportedAt = Date.now();
  const onProgress = async (progress: ReportRowsProgress) => {
    if (Date.now() - reportedAt < PROGRESS_INTERVAL_MS) return;
    reportedAt = Date.now();
    const text = `kpi ${progress.kpi}: ${count(progress.kpiRows)} of ${count(progress.kpiEstimate)} rows`;
    // Never 1 before the file is in place: 1 means COMPLETED.
    const updated = await withTenant(deps.pool, tenant, (client) =>
      generationStore.progress(client, generation.id, Math.min(0.99, progress.fraction), text),
    );
    if (!updated) throw new GenerationGone(`generation ${generation.id} is no longer running`);
    await announceSafely(deps, tenant, updated, logger);
  };
  return writeReportFile({
    dataDir: deps.dataDir,
    tenant,
    generationId: generation.id,
    format: generation.format,
    dimensions: reportDimensions(report.config),
    rows: reportRows(deps, tenant, report.config, onProgress),
    signal: deps.abandon,
  });
}

/** Settles a job that threw: FAILED for good, or nak'ed for another attempt. */
async function settleFailure(
  deps: WorkerDeps,
  tenant: string,
  generation: GenerationRow | undefined,
  message: JsMsg,
  error: unknown,
  logger: Logger,
): Promise<void> {
  const reason = (error as Error).message;
  if (deps.abandon.aborted) {
    // Shutting down: another worker takes the job at once (and counts one more attempt).
    logger.warn('report abandoned on shutdown; job returned to the queue');
    message.nak();
    return;
  }
  if (!generation) {
    // Not started (Postgres unreachable): no attempt is counted, so retry without limit, backing off.
    logger.warn({ err: error }, 'could not start the report; will retry');
    message.nak(retryDelay(message.info.deliveryCount));
    return;
  }
  if (error instanceof GenerationGone) {
    logger.info({ reason }, 'generation gone while running; dropped');
    message.ack();
    return;
  }
  const permanent = error instanceof ReportConfigError || error instanceof ReportOutputError;
  if (!permanent && generation.attempts < MAX_ATTEMPTS) {
    logger.warn({ err: error, attempt: generation.attempts }, 'report failed; will retry');
    message.nak(retryDelay(generation.attempts));
    return;
  }
  const text = permanent ? reason : `failed after ${generation.attempts} attempts: ${reason}`;
  try {
    await failGeneration(deps, tenant, generation, text);
    // A report that cannot be made as configured is the user's to fix: its reason is enough.
    if (error instanceof ReportConfigError) logger.warn({ reason }, 'report failed');
    else logger.warn({ err: error }, 'report failed');
    message.ack();
  } catch (failError) {
    // Not even FAILED could be recorded: the next delivery starts it again and fails it then.
    logger.error({ err: failError }, 'could not record the failure; will retry');
    message.nak(retryDelay(generation.attempts));
  }
}

async function failGeneration(deps: WorkerDeps, tenant: string, generation: GenerationRow, reason: string) {
  const failed = await withTenant(deps.pool, tenant, (client) =>
    generationStore.fail(client, generation.id, reason),
  );
  if (failed) await announceSafely(deps, tenant, failed, deps.logger);
}

/** Publishes progress to subscribers; Redis being away never fails a report (Postgres holds the state). */
async function announceSafely(deps: WorkerDeps, tenant: string, generation: GenerationRow, logger: Logger) {
  try {
    await announce(deps.redis, tenant, generation);
  } catch (error) {
    logger.warn({ err: error }, 'report progress not published');
  }
}

/**
 * Starts the report worker: consumes REPORTS until closed. On close it stops pulling and lets the
 * current job finish for half of SHUTDOWN_TIMEOUT_MS, then abandons it (its job goes back to the queue).
 */
export async function startReportWorker(config: Config, logger: Logger): Promise<RunningService> {
  const pool = createPool(config.DATABASE_URL!, config.DATABASE_POOL_SIZE);
  await assertRowLevelSecurity(pool);
  const readPool = await createReadPool(pool, config.DATABASE_READ_URL, {
    max: config.DATABASE_POOL_SIZE,
    name: 'report-worker',
    logger,
  });
  const broker = await connectBroker(config.NATS_URL!, 'report-worker', logger);
  await ensureStreams(broker.nc);
  await ensureConsumer(broker.nc, consumers.reportWorker);
  const redis = createRedisPubSub(config.REDIS_URL!, logger);
  const stop = new AbortController();
  const abandon = new AbortController();
  const deps: WorkerDeps = {
    pool,
    readPool,
    redis,
    dataDir: config.DATA_DIR,
    logger,
    abandon: abandon.signal,
  };
  const loop = pullBatches(
    broker.js,
    consumers.reportWorker,
    { batch: 1, expiresMs: 2_000, signal: stop.signal, logger },
    async (messages) => {
      for (const message of messages) await runJob(deps, message);
    },
  );
  return {
    url: `${config.NATS_URL} (consumer ${consumers.reportWorker.config.durable_name})`,
    async close() {
      stop.abort();
      const grace = setTimeout(() => abandon.abort(), config.SHUTDOWN_TIMEOUT_MS / 2);
      await loop;
      clearTimeout(grace);
      await redis.close();
      await broker.close();
      await readPool.end();
      await pool.end();
    },
  };
}

if (isMainModule(import.meta.url))
  await runService('report-worker', ['DATABASE_URL', 'NATS_URL', 'REDIS_URL'], startReportWorker);
