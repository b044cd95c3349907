// The writer process: EVENTS -> Postgres (events + rollups in one transaction), acked after commit.
// It also rebuilds a KPI's rollups from stored events when the KPI's definition changes (backfill).
import type { JsMsg } from '@nats-io/jetstream';
import type pg from 'pg';
import { assertRowLevelSecurity, createPool, withTenant, type TenantClient } from '../../db/pool.ts';
import type { Config } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import { rollupWriteSeconds } from '../../lib/metrics.ts';
import { ATTR_COMPONENT, ATTR_TENANT, withSpan } from '../../lib/telemetry.ts';
import { isMainModule, runService, type RunningService } from '../../lib/service.ts';
import { connectBroker, ensureStreams, type Broker } from '../../streams/connection.ts';
import { consumers, ensureConsumer, pullBatches } from '../../streams/consumers.ts';
import { decodeEventMessage, type Envelope } from '../../streams/envelope.ts';
import { traceHeaders } from '../../streams/publisher.ts';
import { subjects } from '../../streams/subjects.ts';
import { rollupStore } from './rollupStore.ts';
import { computeRollups } from './rollups.ts';
import { eventStore, type IncomingEvent } from './store.ts';

const BACKFILL_PAGE = 5_000;

// Writers share a tenant's lock; a backfill takes it alone, so it never races a batch of the same tenant.
const lockRollups = (client: TenantClient, tenant: string, exclusive: boolean) =>
  client.query(
    `SELECT ${exclusive ? 'pg_advisory_xact_lock' : 'pg_advisory_xact_lock_shared'}(hashtext('rollups:' || $1))`,
    [tenant],
  );

/** Stores one tenant's events and adds their rollups; returns the KPI codes whose rollups changed. */
export async function writeEvents(
  pool: pg.Pool,
  tenant: string,
  events: IncomingEvent[],
): Promise<{ stored: number; kpis: string[] }> {
  return withTenant(pool, tenant, async (client) => {
    await lockRollups(client, tenant, false);
    const fresh = await eventStore.insertNew(client, tenant, events);
    if (!fresh.length) return { stored: 0, kpis: [] };
    const definitions = await eventStore.definitionsForEvents(client, [...new Set(fresh.map((e) => e.name))]);
    const { rollups, distinct } = computeRollups(fresh, definitions);
    await rollupStore.apply(client, tenant, rollups, distinct);
    return { stored: fresh.length, kpis: [...new Set(rollups.map((r) => r.kpiCode))] };
  });
}

/** Recomputes every rollup of one KPI from the stored events, with writers of the tenant held off. */
export async function backfillKpi(
  pool: pg.Pool,
  tenant: string,
  code: string,
  onPage: () => void = () => undefined,
): Promise<number> {
  return withTenant(pool, tenant, async (client) => {
    await lockRollups(client, tenant, true);
    await rollupStore.clear(client, code);
    const definition = (await eventStore.definitions(client)).get(code);
    if (!definition?.eventName || definition.aggregation === 'FORMULA') return 0;
    let after: { ts: Date; id: string } | null = null;
    let total = 0;
    for (;;) {
      const page = await eventStore.page(client, definition.eventName, after, BACKFILL_PAGE);
      if (!page.length) return total;
      const { rollups, distinct } = computeRollups(page, [definition]);
      await rollupStore.apply(client, tenant, rollups, distinct);
      total += page.length;
      onPage();
      const last = page.at(-1)!;
      after = { ts: last.timestamp, id: last.id };
    }
  });
}

function announce(broker: Broker, tenant: string, kpis: string[]): void {
  if (kpis.length)
    broker.nc.publish(subjects.rollupsUpdated(tenant), JSON.stringify({ kpis }), { headers: traceHeaders() });
}

/** Handles one fetched batch of EVENTS: poison messages are terminated, the rest stored, then acked. */
async function handleEvents(pool: pg.Pool, broker: Broker, logger: Logger, messages: JsMsg[]): Promise<void> {
  const byTenant = new Map<string, { messages: JsMsg[]; events: IncomingEvent[] }>();
  for (const message of messages) {
    try {
      const { tenant, eventId, event } = decodeEventMessage(message.json());
      const group = byTenant.get(tenant) ?? { messages: [], events: [] };
      group.messages.push(message);
      group.events.push({ ...event, eventId });
      byTenant.set(tenant, group);
    } catch (error) {
      logger.error({ err: error, seq: message.seq, subject: message.subject }, 'poison message terminated');
      // No reason argument: nats-server before 2.10.4 ignores a +TERM that carries one.
      message.term();
    }
  }
  for (const [tenant, group] of byTenant) {
    const { stored, kpis } = await withSpan(
      'writer store events',
      {
        attributes: {
          [ATTR_COMPONENT]: 'writer',
          [ATTR_TENANT]: tenant,
          'pulsegraph.events': group.events.length,
        },
      },
      async () => {
        const stopTimer = rollupWriteSeconds.startTimer();
        const written = await writeEvents(pool, tenant, group.events);
        stopTimer();
        return written;
      },
    );
    for (const message of group.messages) message.ack();
    announce(broker, tenant, kpis);
    logger.debug({ tenant, received: group.events.length, stored }, 'events written');
  }
}

/** Handles definition changes: rebuilds the KPI's rollups from stored events, then acks. */
async function handleDefinitions(
  pool: pg.Pool,
  broker: Broker,
  logger: Logger,
  messages: JsMsg[],
): Promise<void> {
  for (const message of messages) {
    const change = message.json<Envelope<{ code?: string }>>();
    const code = change.payload?.code;
    if (typeof change.tenant !== 'string' || typeof code !== 'string') {
      logger.error({ seq: message.seq, subject: message.subject }, 'not a KPI definition change; terminated');
      message.term();
      continue;
    }
    // Each page tells JetStream the message is still being worked on, so a long backfill is not redelivered.
    const events = await backfillKpi(pool, change.tenant, code, () => message.working());
    message.ack();
    announce(broker, change.tenant, [code]);
    logger.info({ tenant: change.tenant, kpi: code, events }, 'kpi rollups rebuilt from stored events');
  }
}

/** Starts the writer: consumes EVENTS and METADATA until closed. */
export async function startWriter(config: Config, logger: Logger): Promise<RunningService> {
  const pool = createPool(config.DATABASE_URL!, config.DATABASE_POOL_SIZE, 'writer');
  await assertRowLevelSecurity(pool);
  const broker = await connectBroker(config.NATS_URL!, 'writer', logger);
  await ensureStreams(broker.nc);
  await ensureConsumer(broker.nc, consumers.writer);
  await ensureConsumer(broker.nc, consumers.backfill);
  const stop = new AbortController();
  const options = { signal: stop.signal, logger };
  const loops = Promise.all([
    pullBatches(broker.js, consumers.writer, { ...options, batch: 2_000, expiresMs: 1_000 }, (m) =>
      handleEvents(pool, broker, logger, m),
    ),
    pullBatches(broker.js, consumers.backfill, { ...options, batch: 16, expiresMs: 2_000 }, (m) =>
      handleDefinitions(pool, broker, logger, m),
    ),
  ]);
  return {
    url: `${config.NATS_URL} (consumers ${consumers.writer.config.durable_name}, ${consumers.backfill.config.durable_name})`,
    async close() {
      stop.abort();
      await loops;
      await broker.close();
      await pool.end();
    },
  };
}

if (isMainModule(import.meta.url)) await runService('writer', ['DATABASE_URL', 'NATS_URL'], startWriter);
