// The report scheduler process: every few seconds it reads every tenant's scheduled reports and queues
// one generation per cron tick that fell due since it last looked. Any number of schedulers may run:
// a tick's generation is unique in Postgres (trigger 'schedule:<tick>'), so only the scheduler whose
// insert wins publishes its job, and the job's Nats-Msg-Id dedups a retried publish.
import { CronExpressionParser } from 'cron-parser';
import { assertRowLevelSecurity, createPool } from '../../db/pool.ts';
import type { Config } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import { createRedisPubSub } from '../../lib/redis.ts';
import { isMainModule, runService, type RunningService } from '../../lib/service.ts';
import { connectBroker, ensureStreams } from '../../streams/connection.ts';
import { Stream } from '../../streams/subjects.ts';
import { enqueueGeneration, type QueueDeps } from './queue.ts';
import { reportStore, type GenerationRow } from './store.ts';

/** How often the scheduler looks, by default. */
export const PASS_INTERVAL_MS = 5_000;
/** On start, only ticks this recent are run: a scheduler that was down does not replay days of ticks. */
export const START_LOOKBACK_MS = 60_000;
/** After start, a pass that came late (an outage) catches up at most this far back. */
export const MAX_CATCH_UP_MS = 10 * 60_000;
// A bound per report and pass, whatever the expression.
const MAX_TICKS = 100;

/** The ticks of a cron schedule in its time zone after `after` and up to `until` (ms since the epoch). */
export function dueTicks(schedule: { cron: string; timezone: string }, after: number, until: number): Date[] {
  if (until <= after) return [];
  const expression = CronExpressionParser.parse(schedule.cron, {
    tz: schedule.timezone,
    currentDate: new Date(after),
    endDate: new Date(until),
  });
  const ticks: Date[] = [];
  while (ticks.length < MAX_TICKS && expression.hasNext()) ticks.push(expression.next().toDate());
  return ticks;
}

/** The trigger of a scheduled tick's generation: one generation per tick, whoever schedules it. */
export const scheduleTrigger = (tick: Date) => `schedule:${tick.toISOString()}`;

/** Queues the generations of scheduled reports as their ticks fall due, by an injectable clock. */
export class ReportScheduler {
  private readonly deps: QueueDeps & { logger: Logger };
  private readonly now: () => number;
  /** Up to when every tick has been queued; undefined before the first successful pass. */
  private lastLooked: number | undefined;

  constructor(deps: QueueDeps & { logger: Logger }, now: () => number = Date.now) {
    this.deps = deps;
    this.now = now;
  }

  /**
   * Looks once: queues every tick since the last successful look (on the first, within the last
   * minute). Returns the generations this scheduler created; a tick another scheduler already queued
   * is not among them. A failed pass is retried whole by the next one: queuing a tick twice is a no-op.
   */
  async pass(): Promise<GenerationRow[]> {
    const until = this.now();
    const after =
      this.lastLooked === undefined
        ? until - START_LOOKBACK_MS
        : Math.max(this.lastLooked, until - MAX_CATCH_UP_MS);
    const { logger } = this.deps;
    const created: GenerationRow[] = [];
    let failures = 0;
    for (const report of await reportStore.scheduled(this.deps.pool)) {
      let ticks: Date[];
      try {
        ticks = dueTicks(report, after, until);
      } catch (error) {
        // Validated when stored; only a changed cron grammar could get here, and retrying cannot help.
        logger.error({ err: error, reportId: report.reportId }, 'schedule does not parse; skipped');
        continue;
      }
      for (const tick of ticks) {
        try {
          const generation = await enqueueGeneration(
            this.deps,
            report.tenant,
            report.reportId,
            scheduleTrigger(tick),
          );
          if (generation) created.push(generation);
        } catch (error) {
          failures++;
          logger.error(
            { err: error, tenant: report.tenant, reportId: report.reportId, tick },
            'scheduled generation not queued; retrying on the next pass',
          );
        }
      }
    }
    if (failures === 0) this.lastLooked = until;
    if (created.length) logger.info({ generations: created.length }, 'scheduled generations queued');
    return created;
  }
}

/** Starts the scheduler process: a pass every `intervalMs` until closed. */
export async function startScheduler(
  config: Config,
  logger: Logger,
  options: { now?: () => number; intervalMs?: number } = {},
): Promise<RunningService> {
  const pool = createPool(config.DATABASE_URL!, config.DATABASE_POOL_SIZE);
  await assertRowLevelSecurity(pool);
  const broker = await connectBroker(config.NATS_URL!, 'scheduler', logger);
  await ensureStreams(broker.nc);
  const redis = createRedisPubSub(config.REDIS_URL!, logger);
  const scheduler = new ReportScheduler({ pool, broker, redis, logger }, options.now);
  const intervalMs = options.intervalMs ?? PASS_INTERVAL_MS;
  let running = true;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (running) {
      await scheduler.pass().catch((error: unknown) => logger.error({ err: error }, 'scheduler pass failed'));
      if (!running) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();
  return {
    url: `${config.NATS_URL} (stream ${Stream.REPORTS})`,
    async close() {
      running = false;
      wake?.();
      await loop;
      await redis.close();
      await broker.close();
      await pool.end();
    },
  };
}

if (isMainModule(import.meta.url))
  await runService('scheduler', ['DATABASE_URL', 'NATS_URL', 'REDIS_URL'], startScheduler);
