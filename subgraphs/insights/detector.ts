// The insight detector process: a durable consumer of the KPI stream. Each KPI value triggers a
// judgment of that KPI (judgeKpi.ts); what changed is stored, then published on
// insights.<tenant>.<kpi> (one message per insight version), then the values are acked.
import type { JsMsg } from '@nats-io/jetstream';
import type pg from 'pg';
import { assertRowLevelSecurity, createPool, withTenant } from '../../db/pool.ts';
import { TENANT_PATTERN } from '../../lib/auth.ts';
import type { Config } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import { isMainModule, runService, type RunningService } from '../../lib/service.ts';
import { connectBroker, ensureStreams, type Broker } from '../../streams/connection.ts';
import { consumers, ensureConsumer, pullBatches } from '../../streams/consumers.ts';
import { envelope, type Envelope } from '../../streams/envelope.ts';
import { publishAll } from '../../streams/publisher.ts';
import { isSubjectToken, subjects } from '../../streams/subjects.ts';
import { judgeKpi, type DetectorMemory } from './judgeKpi.ts';
import { KpiHistories } from './kpiHistory.ts';
import { insightStore, type InsightRow } from './store.ts';

// A KPI whose judgment failed is judged again on a redelivery this much later.
const RETRY_MS = 2_000;

/** An insight as newInsights serves it (the INSIGHTS stream's payload): the schema's Insight. */
export function insightPayload(row: InsightRow) {
  return {
    id: row.id,
    context: row.context,
    kind: row.kind,
    severity: row.severity,
    title: row.title,
    detail: row.detail,
    kpi: row.kpiCode ? { code: row.kpiCode } : null,
    observed: row.observed,
    expected: row.expected,
    at: row.at.toISOString(),
    status: row.status,
    openedAt: row.openedAt.toISOString(),
    closedAt: row.closedAt?.toISOString() ?? null,
  };
}

/** A KPI value as the detector reads it from the KPI stream; undefined when the message is not one. */
function decodeKpiValue(message: JsMsg): { tenant: string; code: string; value: number | null } | undefined {
  try {
    const body = message.json<Partial<Envelope<{ kpi?: { code?: unknown }; value?: unknown }>>>();
    const tenant = body.tenant;
    const code = body.payload?.kpi?.code;
    const value = body.payload?.value;
    if (typeof tenant !== 'string' || !TENANT_PATTERN.test(tenant)) return undefined;
    if (typeof code !== 'string' || !isSubjectToken(code) || message.subject !== subjects.kpi(tenant, code))
      return undefined;
    if (value !== null && (typeof value !== 'number' || !Number.isFinite(value))) return undefined;
    return { tenant, code, value };
  } catch {
    return undefined;
  }
}

/** Judges KPIs on their values and publishes the insights that changed. */
export class InsightDetector {
  private readonly memory: DetectorMemory = {
    histories: new KpiHistories(),
    pendingFalls: new Map(),
    trendJudgedAt: new Map(),
  };
  private readonly pool: pg.Pool;
  private readonly broker: Broker;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(pool: pg.Pool, broker: Broker, logger: Logger, now: () => number) {
    this.pool = pool;
    this.broker = broker;
    this.logger = logger;
    this.now = now;
  }

  /**
   * Handles a fetched batch: the values of one KPI are judged once (the latest value counts), then
   * acked; a message that is not a KPI value is terminated.
   */
  async handle(messages: JsMsg[]): Promise<void> {
    const byKpi = new Map<
      string,
      { tenant: string; code: string; value: number | null; messages: JsMsg[] }
    >();
    for (const message of messages) {
      const decoded = decodeKpiValue(message);
      if (!decoded) {
        this.logger.error({ seq: message.seq, subject: message.subject }, 'not a KPI value; terminated');
        message.term();
        continue;
      }
      const key = `${decoded.tenant}|${decoded.code}`;
      const group = byKpi.get(key) ?? { ...decoded, messages: [] };
      group.value = decoded.value;
      group.messages.push(message);
      byKpi.set(key, group);
    }
    let failure: unknown;
    let failed = 0;
    for (const { tenant, code, value, messages: group } of byKpi.values()) {
      try {
        await this.judge(tenant, code, value);
        for (const message of group) message.ack();
      } catch (error) {
        failure ??= error;
        failed++;
        this.logger.error({ err: error, tenant, kpi: code }, 'judgment failed; the value comes back');
        for (const message of group) message.nak(RETRY_MS);
      }
    }
    // Every KPI failing is a dependency down (Postgres, NATS): let the consumer loop back off.
    if (failed && failed === byKpi.size) throw failure;
  }

  /** Judges one KPI now, stores the steps of its episodes, and publishes every unpublished version. */
  async judge(tenant: string, code: string, value: number | null): Promise<number> {
    const now = this.now();
    const started = performance.now();
    const due = await withTenant(this.pool, tenant, async (client) => {
      await judgeKpi(client, this.memory, tenant, code, value, now);
      return insightStore.unpublished(client, code);
    });
    this.logger.debug({ tenant, kpi: code, ms: Math.round(performance.now() - started) }, 'kpi judged');
    if (!due.length) return 0;
    // Published after commit; a version's message id makes a retry after a failed publish harmless.
    await publishAll(
      this.broker.nc,
      due.map((row) => ({
        subject: subjects.insight(tenant, row.context),
        body: envelope({
          eventType: `insight.${row.kind}`,
          source: 'insights',
          tenant,
          eventId: `${row.id}:v${row.version}`,
          payload: insightPayload(row),
        }),
        msgID: `insight:${tenant}:${row.id}:v${row.version}`,
      })),
    );
    await withTenant(this.pool, tenant, (client) => insightStore.markPublished(client, due));
    for (const row of due) {
      this.logger.info(
        { tenant, kpi: code, insight: row.id, version: row.version, kind: row.kind, status: row.status },
        row.title,
      );
    }
    return due.length;
  }
}

/** Options of the detector; `now` lets tests move its clock. */
export interface DetectorOptions {
  now?: () => number;
}

/** Starts the detector: judges KPIs on every value of the KPI stream until closed. */
export async function startDetector(
  config: Config,
  logger: Logger,
  options: DetectorOptions = {},
): Promise<RunningService> {
  const pool = createPool(config.DATABASE_URL!, config.DATABASE_POOL_SIZE);
  await assertRowLevelSecurity(pool);
  const broker = await connectBroker(config.NATS_URL!, 'detector', logger);
  await ensureStreams(broker.nc);
  await ensureConsumer(broker.nc, consumers.detector);
  const detector = new InsightDetector(pool, broker, logger, options.now ?? Date.now);
  const stop = new AbortController();
  const loop = pullBatches(
    broker.js,
    consumers.detector,
    // A fetch returns when full or expired (1 s, the least nats.js accepts): a lone value waits that long.
    { batch: 256, expiresMs: 1_000, signal: stop.signal, logger },
    (messages) => detector.handle(messages),
  );
  return {
    url: `${config.NATS_URL} (consumer ${consumers.detector.config.durable_name})`,
    async close() {
      stop.abort();
      await loop;
      await broker.close();
      await pool.end();
    },
  };
}

if (isMainModule(import.meta.url)) await runService('detector', ['DATABASE_URL', 'NATS_URL'], startDetector);
