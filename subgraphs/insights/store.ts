import type { TenantClient } from '../../db/pool.ts';
import type { AlertCondition, AlertRule, Direction, InsightKind, Severity } from './detect.ts';

/** An insight as the API serves it. */
export interface InsightRow {
  id: string;
  context: string;
  kind: InsightKind;
  severity: Severity;
  title: string;
  detail: string | null;
  kpiCode: string | null;
  observed: number | null;
  expected: number | null;
  at: Date;
  status: 'OPEN' | 'CLOSED';
  openedAt: Date;
  closedAt: Date | null;
  version: number;
}

/** An insight with what the detector remembers of its episode. */
export interface EpisodeRow extends InsightRow {
  episode: string;
  direction: Direction | null;
  peakObserved: number | null;
  peakExpected: number | null;
  /** How large the peak deviation was (a factor, a change, a value), to compare with new ones. */
  peakSize: number | null;
  peakSummary: string | null;
  recoveringSince: Date | null;
  versionAt: Date;
  versionObserved: number | null;
}

/** The fields of a new version of an episode. */
export interface EpisodeVersion {
  severity: Severity;
  title: string;
  detail: string;
  observed: number | null;
  expected: number | null;
  at: Date;
}

/** What the detector remembers of an episode besides its published fields. */
export interface EpisodeMemory {
  peakObserved?: number | null;
  peakExpected?: number | null;
  peakSize?: number | null;
  peakSummary?: string | null;
  recoveringSince?: Date | null;
}

/** An alert rule as stored. */
export interface AlertRuleRow extends AlertRule {
  createdAt: Date;
  updatedAt: Date;
}

const INSIGHT_COLUMNS = `id, context, kind, severity, title, detail, kpi_code AS "kpiCode", observed, expected, at,
  status, opened_at AS "openedAt", closed_at AS "closedAt", version`;
const EPISODE_COLUMNS = `${INSIGHT_COLUMNS}, episode, direction, peak_observed AS "peakObserved",
  peak_expected AS "peakExpected", peak_size AS "peakSize", peak_summary AS "peakSummary",
  recovering_since AS "recoveringSince", version_at AS "versionAt", version_observed AS "versionObserved"`;
const RULE_COLUMNS = `id, kpi_code AS "kpiCode", condition, value, severity, created_at AS "createdAt",
  updated_at AS "updatedAt"`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string can be an insight or rule id (anything else is simply not found). */
export const isId = (value: string) => UUID.test(value);

/** SQL for insights; every call runs in a tenant-scoped transaction, so RLS confines it. */
export const insightStore = {
  /** The latest insights of a context, newest first. */
  async list(client: TenantClient, context: string, limit: number): Promise<InsightRow[]> {
    const { rows } = await client.query<InsightRow>(
      `SELECT ${INSIGHT_COLUMNS} FROM insights WHERE context = $1 ORDER BY opened_at DESC, id LIMIT $2`,
      [context, limit],
    );
    return rows;
  },

  /** The latest insights of each KPI, newest first, at most `limit` each. */
  async latestOfKpis(
    client: TenantClient,
    codes: readonly string[],
    limit: number,
  ): Promise<Map<string, InsightRow[]>> {
    const { rows } = await client.query<InsightRow>(
      `SELECT ${INSIGHT_COLUMNS} FROM (
         SELECT *, row_number() OVER (PARTITION BY kpi_code ORDER BY opened_at DESC, id) AS rank
           FROM insights WHERE kpi_code = ANY($1::text[])) ranked
        WHERE rank <= $2 ORDER BY opened_at DESC, id`,
      [codes, limit],
    );
    const byKpi = new Map<string, InsightRow[]>(codes.map((code) => [code, []]));
    for (const row of rows) byKpi.get(row.kpiCode!)?.push(row);
    return byKpi;
  },

  /** Insights by id. */
  async byIds(client: TenantClient, ids: readonly string[]): Promise<InsightRow[]> {
    const { rows } = await client.query<InsightRow>(
      `SELECT ${INSIGHT_COLUMNS} FROM insights WHERE id = ANY($1::uuid[])`,
      [ids.filter(isId)],
    );
    return rows;
  },

  /**
   * Serialises the detectors judging one KPI of the tenant until the transaction ends: two judging it
   * at once would both open the same episode.
   */
  async lockKpi(client: TenantClient, tenant: string, code: string): Promise<void> {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('insights:' || $1 || ':' || $2))`, [
      tenant,
      code,
    ]);
  },

  /** The open episodes of a KPI. */
  async openEpisodes(client: TenantClient, code: string): Promise<EpisodeRow[]> {
    const { rows } = await client.query<EpisodeRow>(
      `SELECT ${EPISODE_COLUMNS} FROM insights WHERE context = $1 AND status = 'OPEN'`,
      [code],
    );
    return rows;
  },

  /** The KPI's anomaly episodes that overlap [since, now): their buckets are not learnt from. */
  async anomaliesSince(
    client: TenantClient,
    code: string,
    since: Date,
  ): Promise<Array<{ openedAt: number; closedAt: number | null }>> {
    const { rows } = await client.query<{ openedAt: Date; closedAt: Date | null }>(
      `SELECT opened_at AS "openedAt", closed_at AS "closedAt" FROM insights
        WHERE context = $1 AND kind = 'anomaly' AND (closed_at IS NULL OR closed_at >= $2)`,
      [code, since],
    );
    return rows.map((r) => ({ openedAt: r.openedAt.getTime(), closedAt: r.closedAt?.getTime() ?? null }));
  },

  /** Opens an episode: its first version. */
  async open(
    client: TenantClient,
    tenant: string,
    episode: {
      context: string;
      kind: InsightKind;
      episode: string;
      direction: Direction | null;
      kpiCode: string;
    },
    version: EpisodeVersion,
    memory: EpisodeMemory,
  ): Promise<void> {
    await client.query(
      `INSERT INTO insights (tenant_id, context, kind, episode, direction, kpi_code, severity, title, detail,
                             observed, expected, at, opened_at, version_at, version_observed, peak_observed,
                             peak_expected, peak_size, peak_summary)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12, $10, $13, $14, $15, $16)`,
      [
        tenant,
        episode.context,
        episode.kind,
        episode.episode,
        episode.direction,
        episode.kpiCode,
        version.severity,
        version.title,
        version.detail,
        version.observed,
        version.expected,
        version.at,
        memory.peakObserved ?? null,
        memory.peakExpected ?? null,
        memory.peakSize ?? null,
        memory.peakSummary ?? null,
      ],
    );
  },

  /** A new version of an open episode (published again), or its last one when `close` is set. */
  async newVersion(
    client: TenantClient,
    id: string,
    version: EpisodeVersion,
    memory: EpisodeMemory,
    close = false,
  ): Promise<void> {
    await client.query(
      `UPDATE insights SET severity = $2, title = $3, detail = $4, observed = $5, expected = $6,
              at = $7::timestamptz, version_at = $7::timestamptz, version_observed = $5, version = version + 1,
              recovering_since = NULL, status = CASE WHEN $8::boolean THEN 'CLOSED' ELSE status END,
              closed_at = CASE WHEN $8::boolean THEN $7::timestamptz END,
              peak_observed = COALESCE($9, peak_observed), peak_expected = COALESCE($10, peak_expected),
              peak_size = COALESCE($11, peak_size), peak_summary = COALESCE($12, peak_summary)
        WHERE id = $1 AND status = 'OPEN'`,
      [
        id,
        version.severity,
        version.title,
        version.detail,
        version.observed,
        version.expected,
        version.at,
        close,
        memory.peakObserved ?? null,
        memory.peakExpected ?? null,
        memory.peakSize ?? null,
        memory.peakSummary ?? null,
      ],
    );
  },

  /** Remembers something of an open episode without publishing a new version. */
  async remember(client: TenantClient, id: string, memory: EpisodeMemory): Promise<void> {
    await client.query(
      `UPDATE insights SET recovering_since = CASE WHEN $2::boolean THEN $3::timestamptz ELSE recovering_since END,
              peak_observed = COALESCE($4, peak_observed), peak_expected = COALESCE($5, peak_expected),
              peak_size = COALESCE($6, peak_size), peak_summary = COALESCE($7, peak_summary)
        WHERE id = $1 AND status = 'OPEN'`,
      [
        id,
        memory.recoveringSince !== undefined,
        memory.recoveringSince ?? null,
        memory.peakObserved ?? null,
        memory.peakExpected ?? null,
        memory.peakSize ?? null,
        memory.peakSummary ?? null,
      ],
    );
  },

  /** The versions of a KPI's insights not on the INSIGHTS stream yet (this judgment's, or a failed publish's). */
  async unpublished(client: TenantClient, code: string): Promise<InsightRow[]> {
    const { rows } = await client.query<InsightRow>(
      `SELECT ${INSIGHT_COLUMNS} FROM insights WHERE kpi_code = $1 AND published_version < version
        ORDER BY opened_at, id`,
      [code],
    );
    return rows;
  },

  /** Records that these versions are on the stream. */
  async markPublished(client: TenantClient, versions: ReadonlyArray<{ id: string; version: number }>) {
    if (!versions.length) return;
    await client.query(
      `UPDATE insights i SET published_version = GREATEST(i.published_version, v.version)
         FROM unnest($1::uuid[], $2::int[]) AS v(id, version) WHERE i.id = v.id`,
      [versions.map((v) => v.id), versions.map((v) => v.version)],
    );
  },

  /** A KPI's name and unit (the metadata subgraph owns them), or null when there is no such KPI. */
  async kpiLabel(client: TenantClient, code: string): Promise<{ name: string; unit: string | null } | null> {
    const { rows } = await client.query<{ name: string; unit: string | null }>(
      'SELECT name, unit FROM kpis WHERE code = $1',
      [code],
    );
    return rows[0] ?? null;
  },
};

/** SQL for alert rules; RLS confines every call to the tenant. */
export const alertStore = {
  /** Creates the rule, or changes the severity of the same KPI, condition and value. */
  async define(
    client: TenantClient,
    tenant: string,
    rule: { kpiCode: string; condition: AlertCondition; value: number; severity: Severity },
  ): Promise<AlertRuleRow> {
    const { rows } = await client.query<AlertRuleRow>(
      `INSERT INTO alert_rules (tenant_id, kpi_code, condition, value, severity) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, kpi_code, condition, value)
         DO UPDATE SET severity = EXCLUDED.severity, updated_at = now()
       RETURNING ${RULE_COLUMNS}`,
      [tenant, rule.kpiCode, rule.condition, rule.value, rule.severity],
    );
    return rows[0]!;
  },

  /** The tenant's rules, of one KPI or all, oldest first. */
  async list(client: TenantClient, kpiCode: string | null): Promise<AlertRuleRow[]> {
    const { rows } = await client.query<AlertRuleRow>(
      `SELECT ${RULE_COLUMNS} FROM alert_rules WHERE $1::text IS NULL OR kpi_code = $1
        ORDER BY created_at, id`,
      [kpiCode],
    );
    return rows;
  },

  /** The rules of several KPIs, by KPI. */
  async ofKpis(client: TenantClient, codes: readonly string[]): Promise<Map<string, AlertRuleRow[]>> {
    const { rows } = await client.query<AlertRuleRow>(
      `SELECT ${RULE_COLUMNS} FROM alert_rules WHERE kpi_code = ANY($1::text[]) ORDER BY created_at, id`,
      [codes],
    );
    const byKpi = new Map<string, AlertRuleRow[]>(codes.map((code) => [code, []]));
    for (const row of rows) byKpi.get(row.kpiCode)?.push(row);
    return byKpi;
  },

  /** Deletes a rule; false when there was none. */
  async remove(client: TenantClient, id: string): Promise<boolean> {
    if (!isId(id)) return false;
    const { rowCount } = await client.query('DELETE FROM alert_rules WHERE id = $1', [id]);
    return (rowCount ?? 0) > 0;
  },
};
