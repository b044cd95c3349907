import type { TenantClient } from '../../db/pool.ts';

/** A KPI definition as the API shows it. */
export interface KpiDefinition {
  code: string;
  name: string;
  description: string | null;
  unit: string | null;
  eventName: string | null;
  aggregation: 'SUM' | 'COUNT' | 'AVG' | 'MIN' | 'MAX' | 'DISTINCT_COUNT' | 'P50' | 'P95' | 'P99' | 'FORMULA';
  valueField: string | null;
  formula: string | null;
  dimensions: string[];
  refreshSeconds: number;
  window: string;
}

/** A stored definition with its version, bumped on every change. */
export type StoredKpi = KpiDefinition & { version: number; updatedAt: Date };

const COLUMNS = `code, name, description, unit, event_name AS "eventName", aggregation, value_field AS "valueField",
  formula, dimensions, refresh_seconds AS "refreshSeconds", time_window AS "window", version, updated_at AS "updatedAt"`;

/** SQL for KPI definitions; every call runs inside a tenant-scoped transaction, so RLS confines it. */
export const kpiStore = {
  /** Every definition of the tenant, by code. */
  async list(client: TenantClient): Promise<StoredKpi[]> {
    const { rows } = await client.query<StoredKpi>(`SELECT ${COLUMNS} FROM kpis ORDER BY code`);
    return rows;
  },

  /** The definitions with these codes, in one query. */
  async getMany(client: TenantClient, codes: readonly string[]): Promise<StoredKpi[]> {
    const { rows } = await client.query<StoredKpi>(
      `SELECT ${COLUMNS} FROM kpis WHERE code = ANY($1::text[])`,
      [codes],
    );
    return rows;
  },

  /** Serialises definition changes of one tenant, so that concurrent formulas cannot form a cycle. */
  async lockTenantDefinitions(client: TenantClient, tenant: string): Promise<void> {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('kpis:' || $1))", [tenant]);
  },

  /** Code and formula of every KPI of the tenant, for reference and cycle checks. */
  async formulas(client: TenantClient): Promise<Array<{ code: string; formula: string | null }>> {
    const { rows } = await client.query<{ code: string; formula: string | null }>(
      'SELECT code, formula FROM kpis',
    );
    return rows;
  },

  /** Inserts or replaces a definition; the version moves only when something changed. */
  async upsert(
    client: TenantClient,
    tenant: string,
    kpi: KpiDefinition,
  ): Promise<{ kpi: StoredKpi; changed: boolean }> {
    const { rows } = await client.query<StoredKpi>(
      `INSERT INTO kpis AS k (tenant_id, code, name, description, unit, event_name, aggregation, value_field, formula,
                              dimensions, refresh_seconds, time_window)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (tenant_id, code) DO UPDATE SET
         name = EXCLUDED.name, description = EXCLUDED.description, unit = EXCLUDED.unit,
         event_name = EXCLUDED.event_name, aggregation = EXCLUDED.aggregation, value_field = EXCLUDED.value_field,
         formula = EXCLUDED.formula, dimensions = EXCLUDED.dimensions, refresh_seconds = EXCLUDED.refresh_seconds,
         time_window = EXCLUDED.time_window, version = k.version + 1, updated_at = now()
       WHERE (k.name, k.description, k.unit, k.event_name, k.aggregation, k.value_field, k.formula, k.dimensions,
              k.refresh_seconds, k.time_window)
         IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description, EXCLUDED.unit, EXCLUDED.event_name,
              EXCLUDED.aggregation, EXCLUDED.value_field, EXCLUDED.formula, EXCLUDED.dimensions,
              EXCLUDED.refresh_seconds, EXCLUDED.time_window)
       RETURNING ${COLUMNS}`,
      [
        tenant,
        kpi.code,
        kpi.name,
        kpi.description,
        kpi.unit,
        kpi.eventName,
        kpi.aggregation,
        kpi.valueField,
        kpi.formula,
        kpi.dimensions,
        kpi.refreshSeconds,
        kpi.window,
      ],
    );
    if (rows[0]) return { kpi: rows[0], changed: true };
    // Nothing changed: the conditional update returned no row.
    const [current] = await this.getMany(client, [kpi.code]);
    return { kpi: current!, changed: false };
  },
};
