// SQL for reports and their generations (db/migrations/0003_reports.sql). Every call runs inside a
// tenant-scoped transaction (withTenant), so row-level security confines it; new rows take the tenant
// from that transaction's app.tenant_id.
import type pg from 'pg';
import type { TenantClient } from '../../db/pool.ts';

/** What a report computes: KPIs by dimensions over a time range, filtered (validated by validate.ts). */
export interface ReportConfig {
  metrics: string[];
  dimensions: string[];
  filters: Array<{ field: string; operator: string; value: unknown }>;
  timeRange: { start: string; end: string; interval: string | null };
}

/** A stored report definition. */
export interface ReportRow {
  id: string;
  name: string;
  type: 'DASHBOARD' | 'SCHEDULED' | 'ADHOC' | 'SYSTEM';
  config: ReportConfig;
  schedule: { cron: string; timezone: string } | null;
  format: 'CSV' | 'JSON';
  createdAt: Date;
  updatedAt: Date;
}

/** The fields of a new report, already validated. */
export type NewReport = Pick<ReportRow, 'name' | 'type' | 'config' | 'schedule' | 'format'>;

/** Changes to a report: an absent field stays as it is; `schedule: null` removes the schedule. */
export type ReportChanges = Partial<Pick<ReportRow, 'name' | 'config' | 'schedule' | 'format'>>;

/** Where a generation stands. */
export type GenerationStatus = 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED';

/** One run of a report. */
export interface GenerationRow {
  id: string;
  reportId: string;
  status: GenerationStatus;
  progress: number;
  message: string | null;
  /** 'manual', or 'schedule:<tick as ISO-8601 UTC>'. */
  trigger: string;
  format: 'CSV' | 'JSON';
  attempts: number;
  rowCount: number | null;
  byteCount: number | null;
  /** The output file, relative to DATA_DIR/reports. */
  filePath: string | null;
  error: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** A report due by its schedule, of any tenant (platform_scheduled_reports()). */
export interface ScheduledReport {
  tenant: string;
  reportId: string;
  cron: string;
  timezone: string;
}

// Ids are uuid columns: any other string names no row, and must not reach Postgres as a cast error.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isUuid = (id: string) => UUID.test(id);

const REPORT_COLUMNS = `r.id, r.name, r.type, r.config, r.format, r.created_at AS "createdAt", r.updated_at AS "updatedAt",
  CASE WHEN r.schedule_cron IS NULL THEN NULL
       ELSE json_build_object('cron', r.schedule_cron, 'timezone', r.schedule_timezone) END AS schedule`;

// bigint comes back from pg as a string; these counts fit a double exactly.
const GENERATION_COLUMNS = `id, report_id AS "reportId", status, progress, message, trigger, format, attempts,
  row_count::float8 AS "rowCount", byte_count::float8 AS "byteCount", file_path AS "filePath", error,
  created_at AS "createdAt", started_at AS "startedAt", finished_at AS "finishedAt"`;

/** Report definitions. */
export const reportStore = {
  /** Stores a new report. */
  async create(client: TenantClient, input: NewReport): Promise<ReportRow> {
    const { rows } = await client.query<ReportRow>(
      `INSERT INTO reports AS r (tenant_id, name, type, config, schedule_cron, schedule_timezone, format, created_at)
       VALUES (current_setting('app.tenant_id', true), $1, $2, $3, $4, $5, $6, clock_timestamp())
       RETURNING ${REPORT_COLUMNS}`,
      [
        input.name,
        input.type,
        JSON.stringify(input.config),
        input.schedule?.cron ?? null,
        input.schedule?.timezone ?? null,
        input.format,
      ],
    );
    return rows[0]!;
  },

  /** Applies changes to a report; undefined when there is no such report. */
  async update(client: TenantClient, id: string, input: ReportChanges): Promise<ReportRow | undefined> {
    if (!isUuid(id)) return undefined;
    const keepSchedule = input.schedule === undefined;
    const { rows } = await client.query<ReportRow>(
      `UPDATE reports AS r SET
         name = COALESCE($2, r.name),
         config = COALESCE($3::jsonb, r.config),
         format = COALESCE($4, r.format),
         schedule_cron = CASE WHEN $5 THEN r.schedule_cron ELSE $6 END,
         schedule_timezone = CASE WHEN $5 THEN r.schedule_timezone ELSE $7 END,
         updated_at = now()
       WHERE r.id = $1
       RETURNING ${REPORT_COLUMNS}`,
      [
        id,
        input.name ?? null,
        input.config ? JSON.stringify(input.config) : null,
        input.format ?? null,
        keepSchedule,
        input.schedule?.cron ?? null,
        input.schedule?.timezone ?? null,
      ],
    );
    return rows[0];
  },

  /** One report, or undefined. */
  async get(client: TenantClient, id: string): Promise<ReportRow | undefined> {
    if (!isUuid(id)) return undefined;
    const { rows } = await client.query<ReportRow>(
      `SELECT ${REPORT_COLUMNS} FROM reports r WHERE r.id = $1`,
      [id],
    );
    return rows[0];
  },

  /**
   * The tenant's reports, oldest first, optionally of one type and one status. A report's status is
   * READY while it has no generation, else its latest generation's status. DRAFT is never produced:
   * a report is stored only once it validates, so filtering on DRAFT finds nothing.
   */
  async list(client: TenantClient, filter: { type?: string; status?: string }): Promise<ReportRow[]> {
    const { rows } = await client.query<ReportRow>(
      `SELECT ${REPORT_COLUMNS} FROM reports r
       LEFT JOIN LATERAL (
         SELECT g.status FROM report_generations g
          WHERE g.tenant_id = r.tenant_id AND g.report_id = r.id
          ORDER BY g.created_at DESC, g.id DESC LIMIT 1
       ) latest ON true
       WHERE ($1::text IS NULL OR r.type = $1)
         AND ($2::text IS NULL OR COALESCE(latest.status, 'READY') = $2)
       ORDER BY r.created_at, r.id`,
      [filter.type ?? null, filter.status ?? null],
    );
    return rows;
  },

  /** Every tenant's scheduled reports (ids and schedules only), for the scheduler. */
  async scheduled(pool: pg.Pool): Promise<ScheduledReport[]> {
    const { rows } = await pool.query<ScheduledReport>(
      `SELECT tenant_id AS tenant, report_id AS "reportId", cron, timezone FROM platform_scheduled_reports()`,
    );
    return rows;
  },
};

/** The KPIs of the tenant among `codes`, with the dimensions each can be grouped by. */
export async function kpiDimensions(
  client: TenantClient,
  codes: readonly string[],
): Promise<Map<string, string[]>> {
  const { rows } = await client.query<{ code: string; dimensions: string[] }>(
    'SELECT code, dimensions FROM kpis WHERE code = ANY($1::text[])',
    [codes],
  );
  return new Map(rows.map((row) => [row.code, row.dimensions]));
}

/** Generations (runs) of reports and their lifecycle QUEUED -> RUNNING -> COMPLETED | FAILED. */
export const generationStore = {
  /**
   * Inserts a QUEUED generation; undefined when that scheduled tick already has its generation.
   * created_at is the statement's clock, not the transaction's, so that the latest is strict.
   */
  async create(
    client: TenantClient,
    fields: { reportId: string; format: 'CSV' | 'JSON'; trigger: string },
  ): Promise<GenerationRow | undefined> {
    const { rows } = await client.query<GenerationRow>(
      `INSERT INTO report_generations (tenant_id, report_id, format, trigger, created_at)
       VALUES (current_setting('app.tenant_id', true), $1, $2, $3, clock_timestamp())
       ON CONFLICT (tenant_id, report_id, trigger) WHERE trigger <> 'manual' DO NOTHING
       RETURNING ${GENERATION_COLUMNS}`,
      [fields.reportId, fields.format, fields.trigger],
    );
    return rows[0];
  },

  /** One generation, or undefined. */
  async get(client: TenantClient, id: string): Promise<GenerationRow | undefined> {
    if (!isUuid(id)) return undefined;
    const { rows } = await client.query<GenerationRow>(
      `SELECT ${GENERATION_COLUMNS} FROM report_generations WHERE id = $1`,
      [id],
    );
    return rows[0];
  },

  /** The latest generation of a report, or undefined when it has none. */
  async latest(client: TenantClient, reportId: string): Promise<GenerationRow | undefined> {
    return (await this.latestOf(client, [reportId])).get(reportId);
  },

  /** The latest generation of each of these reports (one query), by report id; reports without one are absent. */
  async latestOf(client: TenantClient, reportIds: readonly string[]): Promise<Map<string, GenerationRow>> {
    const ids = reportIds.filter(isUuid);
    if (!ids.length) return new Map();
    const { rows } = await client.query<GenerationRow>(
      `SELECT DISTINCT ON (report_id) ${GENERATION_COLUMNS} FROM report_generations
        WHERE report_id = ANY($1::uuid[])
        ORDER BY report_id, created_at DESC, id DESC`,
      [ids],
    );
    return new Map(rows.map((row) => [row.reportId, row]));
  },

  /**
   * Starts (or restarts, on redelivery of a job whose worker died) a generation: RUNNING, one more
   * attempt, progress 0. Undefined when it is already COMPLETED or FAILED (or does not exist).
   */
  async start(client: TenantClient, id: string): Promise<GenerationRow | undefined> {
    return transition(
      client,
      id,
      ['QUEUED', 'RUNNING'],
      `status = 'RUNNING', attempts = attempts + 1, started_at = now(), progress = 0, message = NULL`,
    );
  },

  /** Records the progress (clamped to 0..1) of a RUNNING generation; undefined when it is not running. */
  async progress(
    client: TenantClient,
    id: string,
    progress: number,
    message: string,
  ): Promise<GenerationRow | undefined> {
    return transition(client, id, ['RUNNING'], 'progress = GREATEST(0, LEAST(1, $2::float8)), message = $3', [
      progress,
      message,
    ]);
  },

  /** Completes a RUNNING generation with its output; undefined when it is not running. */
  async complete(
    client: TenantClient,
    id: string,
    output: { rowCount: number; byteCount: number; filePath: string },
  ): Promise<GenerationRow | undefined> {
    return transition(
      client,
      id,
      ['RUNNING'],
      `status = 'COMPLETED', progress = 1, row_count = $2, byte_count = $3, file_path = $4, error = NULL,
       finished_at = now()`,
      [output.rowCount, output.byteCount, output.filePath],
    );
  },

  /** Fails a QUEUED or RUNNING generation with a reason (also its progress message); undefined otherwise. */
  async fail(client: TenantClient, id: string, error: string): Promise<GenerationRow | undefined> {
    return transition(
      client,
      id,
      ['QUEUED', 'RUNNING'],
      `status = 'FAILED', error = $2, message = $2, finished_at = now()`,
      [error],
    );
  },
};

/** Updates a generation only from the given statuses (its row lock orders concurrent transitions). */
async function transition(
  client: TenantClient,
  id: string,
  from: GenerationStatus[],
  set: string,
  values: unknown[] = [],
): Promise<GenerationRow | undefined> {
  if (!isUuid(id)) return undefined;
  const { rows } = await client.query<GenerationRow>(
    `UPDATE report_generations SET ${set}
      WHERE id = $1 AND status = ANY($${values.length + 2}::text[])
      RETURNING ${GENERATION_COLUMNS}`,
    [id, ...values, from],
  );
  return rows[0];
}
