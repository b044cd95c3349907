import type { TenantClient } from '../../db/pool.ts';
import { metricReads } from '../../lib/metrics.ts';
import type { ValidEvent } from '../../lib/events.ts';
import type { RollupKpi, StoredEvent } from './rollups.ts';

/** A KPI definition as the metrics subgraph reads it (the metadata subgraph owns it). */
export interface KpiDefinition extends RollupKpi {
  formula: string | null;
  unit: string | null;
  window: string;
  refreshSeconds: number;
  version: number;
}

/** An event to store: its id and its validated content. */
export type IncomingEvent = ValidEvent & { eventId: string };

const DEFINITION_COLUMNS = `code, event_name AS "eventName", aggregation, value_field AS "valueField", dimensions,
  formula, unit, time_window AS "window", refresh_seconds AS "refreshSeconds", version`;

/** Every KPI definition of the tenant; no parameters, so it can open a transaction (withTenantReadFrom). */
export const DEFINITIONS_SQL = `SELECT ${DEFINITION_COLUMNS} FROM kpis`;

/** Definitions by code. */
export function definitionsByCode(rows: readonly KpiDefinition[]): Map<string, KpiDefinition> {
  return new Map(rows.map((row) => [row.code, row]));
}

/** SQL for events and the definitions the metrics subgraph computes from; RLS confines every call to one tenant. */
export const eventStore = {
  /** Which of these event ids the store already has. */
  async existingIds(client: TenantClient, ids: readonly string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const { rows } = await client.query<{ event_id: string }>(
      'SELECT event_id FROM event_ids WHERE event_id = ANY($1::text[])',
      [ids],
    );
    return new Set(rows.map((r) => r.event_id));
  },

  /**
   * Stores the events whose ids are new and returns them; ids already stored are skipped, which makes
   * redelivery after a crash harmless.
   */
  async insertNew(
    client: TenantClient,
    tenant: string,
    given: readonly IncomingEvent[],
  ): Promise<StoredEvent[]> {
    // One copy per id: a batch may hold the same event twice (a message JetStream stored again after a
    // restart lost its duplicate window), and both copies would pass the `fresh` filter below.
    const byId = new Map<string, IncomingEvent>();
    for (const event of given) if (!byId.has(event.eventId)) byId.set(event.eventId, event);
    const events = [...byId.values()];
    if (!events.length) return [];
    const { rows } = await client.query<{ event_id: string }>(
      `WITH fresh AS (
         INSERT INTO event_ids (tenant_id, event_id, ts)
         SELECT $1, * FROM unnest($2::text[], $3::timestamptz[])
         ON CONFLICT DO NOTHING RETURNING event_id)
       INSERT INTO events (tenant_id, event_id, ts, type, name, source, attributes, metadata, version)
       SELECT $1, e.* FROM unnest($2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
                                  $8::jsonb[], $9::text[]) AS e(event_id, ts, type, name, source, attributes, metadata, version)
        WHERE e.event_id IN (SELECT event_id FROM fresh)
       RETURNING event_id`,
      [
        tenant,
        events.map((e) => e.eventId),
        events.map((e) => e.timestamp),
        events.map((e) => e.type),
        events.map((e) => e.name),
        events.map((e) => e.source),
        events.map((e) => JSON.stringify(e.attributes)),
        events.map((e) => (e.metadata ? JSON.stringify(e.metadata) : null)),
        events.map((e) => e.version),
      ],
    );
    const fresh = new Set(rows.map((r) => r.event_id));
    return events
      .filter((e) => fresh.has(e.eventId))
      .map((e) => ({ id: e.eventId, name: e.name, timestamp: e.timestamp, attributes: e.attributes }));
  },

  /** Stored events of one name, oldest first, in pages after a (ts, id) position: for backfills. */
  async page(
    client: TenantClient,
    name: string,
    after: { ts: Date; id: string } | null,
    limit: number,
  ): Promise<StoredEvent[]> {
    const { rows } = await client.query<{ event_id: string; ts: Date; attributes: Record<string, unknown> }>(
      `SELECT event_id, ts, attributes FROM events
        WHERE name = $1 AND ($2::timestamptz IS NULL OR (ts, event_id) > ($2, $3))
        ORDER BY ts, event_id LIMIT $4`,
      [name, after?.ts ?? null, after?.id ?? '', limit],
    );
    return rows.map((r) => ({ id: r.event_id, name, timestamp: r.ts, attributes: r.attributes }));
  },

  /** Every KPI definition of the tenant, by code. */
  async definitions(client: TenantClient): Promise<Map<string, KpiDefinition>> {
    return definitionsByCode((await client.query<KpiDefinition>(DEFINITIONS_SQL)).rows);
  },

  /** Definitions of the KPIs computed from these event names. */
  async definitionsForEvents(client: TenantClient, names: readonly string[]): Promise<KpiDefinition[]> {
    const { rows } = await client.query<KpiDefinition>(
      `SELECT ${DEFINITION_COLUMNS} FROM kpis WHERE event_name = ANY($1::text[])`,
      [names],
    );
    return rows;
  },

  /** Counts of raw events per interval bucket, for event names no rollup covers. */
  async eventCounts(
    client: TenantClient,
    query: { name: string; from: Date; to: Date; intervalMs: number },
  ): Promise<Array<{ at: Date; count: number }>> {
    metricReads.inc({ source: 'events' });
    const { rows } = await client.query<{ at: Date; n: string }>(
      `SELECT date_bin(make_interval(secs => $4::double precision / 1000), ts, 'epoch') AS at, count(*) AS n
         FROM events WHERE name = $1 AND ts >= $2 AND ts < $3 GROUP BY 1 ORDER BY 1`,
      [query.name, query.from, query.to, query.intervalMs],
    );
    return rows.map((r) => ({ at: r.at, count: Number(r.n) }));
  },
};
