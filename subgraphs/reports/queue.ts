// Report generations on their way to the worker: stored QUEUED, announced on Redis, then published as a
// job on the REPORTS work-queue stream; and the progress feed a reportProgress subscriber reads.
import type pg from 'pg';
import { withTenant } from '../../db/pool.ts';
import { appError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import {
  publishReportProgress,
  reportProgressChannel,
  type RedisPubSub,
  type ReportProgress,
} from '../../lib/redis.ts';
import type { Broker } from '../../streams/connection.ts';
import { envelope } from '../../streams/envelope.ts';
import { publishAll } from '../../streams/publisher.ts';
import { subjects } from '../../streams/subjects.ts';
import { generationStore, reportStore, type GenerationRow } from './store.ts';

/** The payload of a job on the REPORTS stream (in the envelope), Nats-Msg-Id `<tenant>:<generationId>`. */
export interface ReportJob {
  generationId: string;
  reportId: string;
}

/** What enqueueGeneration needs. */
export interface QueueDeps {
  pool: pg.Pool;
  broker: Broker;
  redis: RedisPubSub;
  logger?: Logger;
}

/** The progress event that tells a generation's current state. */
export function progressOf(generation: GenerationRow): ReportProgress {
  return {
    reportId: generation.reportId,
    generationId: generation.id,
    status: generation.status,
    progress: generation.progress,
    ...(generation.message === null ? {} : { message: generation.message }),
  };
}

/** Publishes the generation's current state to the tenant's subscribers of its report. */
export async function announce(redis: RedisPubSub, tenant: string, generation: GenerationRow): Promise<void> {
  await publishReportProgress(redis, tenant, progressOf(generation));
}

/**
 * Queues a generation of the report in its format: stores it QUEUED, announces it, and publishes its
 * job. Undefined when `trigger` is a scheduled tick that already has its generation (then nothing is
 * published). A job that cannot be published leaves its generation FAILED, never QUEUED for ever, and
 * throws SERVICE_UNAVAILABLE; an unknown report throws NOT_FOUND.
 */
export async function enqueueGeneration(
  deps: QueueDeps,
  tenant: string,
  reportId: string,
  trigger = 'manual',
): Promise<GenerationRow | undefined> {
  const generation = await withTenant(deps.pool, tenant, async (client) => {
    const report = await reportStore.get(client, reportId);
    if (!report) throw appError('NOT_FOUND', `no report with id "${reportId}"`, { field: 'id' });
    return generationStore.create(client, { reportId, format: report.format, trigger });
  });
  if (!generation) return undefined;
  // Announced before the job exists, so that no RUNNING event of the worker can precede QUEUED.
  await announceQuietly(deps, tenant, generation);
  const job: ReportJob = { generationId: generation.id, reportId };
  const msgID = `${tenant}:${generation.id}`;
  try {
    await publishAll(deps.broker.nc, [
      {
        subject: subjects.reportJobs(tenant),
        body: envelope({
          eventType: 'report.job',
          source: 'reports',
          tenant,
          eventId: generation.id,
          payload: job,
        }),
        msgID,
      },
    ]);
  } catch (error) {
    const reason = `the job could not be queued: ${(error as Error).message}`;
    deps.logger?.error({ err: error, reportId, generationId: generation.id }, 'report job not published');
    const failed = await withTenant(deps.pool, tenant, (client) =>
      generationStore.fail(client, generation.id, reason),
    ).catch(() => undefined);
    if (failed) await announceQuietly(deps, tenant, failed);
    throw appError(
      'SERVICE_UNAVAILABLE',
      `report ${reportId} could not be queued (the job stream did not answer); generation ${generation.id} is FAILED, try again`,
    );
  }
  return generation;
}

// Progress is ephemeral: a Redis outage must not fail the generation, whose state Postgres keeps.
async function announceQuietly(deps: QueueDeps, tenant: string, generation: GenerationRow): Promise<void> {
  await announce(deps.redis, tenant, generation).catch((error: unknown) =>
    deps.logger?.warn({ err: error, generationId: generation.id }, 'report progress not announced'),
  );
}

const sameEvent = (a: ReportProgress, b: ReportProgress | undefined) =>
  !!b &&
  a.reportId === b.reportId &&
  a.generationId === b.generationId &&
  a.status === b.status &&
  a.progress === b.progress &&
  (a.message ?? null) === (b.message ?? null);

/**
 * A report's progress for one subscriber: the current state (`readLatest`, when there is one) at once,
 * then live events from Redis. Subscribes before reading, so no event falls between the two; an event
 * identical to the one just given is skipped (the live echo of the state just read).
 *
 * Hand-written rather than an async generator: return() must end a pending next() at once and
 * release the Redis subscription, where a generator would wait for the next event first.
 */
export async function followProgress(
  redis: RedisPubSub,
  tenant: string,
  reportId: string,
  readLatest: () => Promise<GenerationRow | undefined>,
): Promise<AsyncIterableIterator<ReportProgress>> {
  const queue: ReportProgress[] = [];
  const waiting: Array<(result: IteratorResult<ReportProgress>) => void> = [];
  let last: ReportProgress | undefined;
  let closed = false;
  const onEvent = (event: ReportProgress) => {
    if (closed) return;
    if (!waiting.length) queue.push(event);
    else if (!sameEvent(event, last)) waiting.shift()!({ value: (last = event), done: false });
  };
  const subscription = await redis.subscribe(reportProgressChannel(tenant, reportId), onEvent);
  const close = () => {
    if (closed) return;
    closed = true;
    redis.unsubscribe(subscription);
    queue.length = 0;
    for (const waiter of waiting.splice(0)) waiter({ value: undefined, done: true });
  };
  try {
    const latest = await readLatest();
    if (latest) queue.unshift(progressOf(latest));
  } catch (error) {
    close();
    throw error;
  }
  const iterator: AsyncIterableIterator<ReportProgress> = {
    next() {
      while (queue.length) {
        const event = queue.shift()!;
        if (sameEvent(event, last)) continue;
        return Promise.resolve({ value: (last = event), done: false });
      }
      if (closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => waiting.push(resolve));
    },
    return() {
      close();
      return Promise.resolve({ value: undefined, done: true });
    },
    throw(error: unknown) {
      close();
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
