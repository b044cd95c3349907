// Validation of report definitions (createReport, updateReport): pure functions over the input and the
// tenant's KPIs, each refusal a BAD_USER_INPUT naming the field, what was expected and what arrived.
import { CronExpressionParser } from 'cron-parser';
import { intervalMs } from '../../lib/durations.ts';
import { appError } from '../../lib/errors.ts';
import type { NewReport, ReportChanges, ReportConfig, ReportRow } from './store.ts';

/** A time as GraphQL delivers a DateTime argument (a Date), or an ISO string. */
type Time = Date | string;

/** ReportConfigInput as GraphQL delivers it. */
export interface ReportConfigInput {
  metrics: string[];
  dimensions?: string[] | null;
  filters?: Array<{ field: string; operator: string; value?: unknown }> | null;
  timeRange: { start: Time; end: Time; interval?: string | null };
}

/** ScheduleInput as GraphQL delivers it. */
export interface ScheduleInput {
  cron: string;
  timezone?: string | null;
}

/** CreateReportInput as GraphQL delivers it. */
export interface CreateReportInput {
  name: string;
  type: ReportRow['type'];
  config: ReportConfigInput;
  schedule?: ScheduleInput | null;
  format?: ReportRow['format'] | null;
}

/** UpdateReportInput as GraphQL delivers it; `schedule: null` removes the schedule. */
export interface UpdateReportInput {
  name?: string | null;
  config?: ReportConfigInput | null;
  schedule?: ScheduleInput | null;
  format?: ReportRow['format'] | null;
}

/** The tenant's KPIs that a config names, by code, with the dimensions each can be grouped by. */
export type KpiDimensions = Map<string, string[]>;

export const MAX_NAME_LENGTH = 200;
export const MAX_METRICS = 50;
export const MAX_FILTERS = 20;
export const MAX_SPAN_DAYS = 366;
export const MAX_BUCKETS = 1_000_000;
const DAY_MS = 86_400_000;
/** Filter operators the report worker applies; more will come. */
const OPERATORS = ['eq'];
// Aliases whose ticks fall on whole minutes; @secondly would run every second.
const CRON_ALIASES = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly', '@minutely'];

/** Throws BAD_USER_INPUT for one field. */
function invalid(field: string, message: string): never {
  throw appError('BAD_USER_INPUT', `${field}: ${message}`, { field });
}

const quoted = (values: Iterable<string>) => [...values].map((v) => JSON.stringify(v)).join(', ');

/** A report name: trimmed, 1 to 200 characters. */
export function normaliseName(name: string): string {
  const trimmed = name.trim();
  if (!trimmed || trimmed.length > MAX_NAME_LENGTH)
    invalid('name', `expected 1 to ${MAX_NAME_LENGTH} characters, but got ${trimmed.length}`);
  return trimmed;
}

/** Checks a config against the tenant's KPIs (`kpis` holds those of config.metrics that exist). */
export function normaliseConfig(input: ReportConfigInput, kpis: KpiDimensions): ReportConfig {
  const { metrics } = input;
  if (metrics.length < 1 || metrics.length > MAX_METRICS)
    invalid('config.metrics', `expected 1 to ${MAX_METRICS} KPI codes, but got ${metrics.length}`);
  if (new Set(metrics).size !== metrics.length)
    invalid('config.metrics', `expected distinct KPI codes, but got ${quoted(metrics)}`);
  const unknown = metrics.filter((code) => !kpis.has(code));
  if (unknown.length)
    invalid('config.metrics', `unknown KPI ${quoted(unknown)}: define it first (defineKpi)`);
  // A report groups and filters every chosen KPI alike, so only dimensions they all have are usable.
  const usable = (dimension: string) => metrics.every((code) => kpis.get(code)!.includes(dimension));
  const notUsable = (field: string, dimension: string) => {
    const lacking = metrics.filter((code) => !kpis.get(code)!.includes(dimension));
    const has = (code: string) => kpis.get(code)!.join(', ') || 'none';
    invalid(
      field,
      `"${dimension}" is not a dimension of KPI ${lacking.map((c) => `"${c}" (its dimensions: ${has(c)})`).join(', ')}`,
    );
  };

  const dimensions = input.dimensions ?? [];
  if (new Set(dimensions).size !== dimensions.length)
    invalid('config.dimensions', `expected distinct names, but got ${quoted(dimensions)}`);
  for (const dimension of dimensions) if (!usable(dimension)) notUsable('config.dimensions', dimension);

  const filters = input.filters ?? [];
  if (filters.length > MAX_FILTERS)
    invalid('config.filters', `expected at most ${MAX_FILTERS} filters, but got ${filters.length}`);
  filters.forEach((filter, i) => {
    const field = `config.filters[${i}]`;
    if (!usable(filter.field)) notUsable(`${field}.field`, filter.field);
    if (!OPERATORS.includes(filter.operator))
      invalid(`${field}.operator`, `only "eq" is supported for now, but got "${filter.operator}"`);
    const value = filter.value;
    const scalar =
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value));
    if (!scalar)
      invalid(`${field}.value`, `expected a string, number or boolean, but got ${JSON.stringify(value)}`);
  });

  return {
    metrics,
    dimensions,
    filters: filters.map(({ field, operator, value }) => ({ field, operator, value })),
    timeRange: normaliseTimeRange(input.timeRange),
  };
}

/** A time range: start before end, at most 366 days, an interval of lib/durations.ts, at most 1,000,000 buckets. */
export function normaliseTimeRange(input: ReportConfigInput['timeRange']): ReportConfig['timeRange'] {
  const field = 'config.timeRange';
  const start = new Date(input.start);
  const end = new Date(input.end);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()))
    invalid(
      field,
      `expected ISO-8601 start and end, but got ${String(input.start)} and ${String(input.end)}`,
    );
  const span = end.getTime() - start.getTime();
  if (span <= 0)
    invalid(field, `expected start before end, but got ${start.toISOString()} to ${end.toISOString()}`);
  if (span > MAX_SPAN_DAYS * DAY_MS)
    invalid(field, `expected at most ${MAX_SPAN_DAYS} days, but got ${(span / DAY_MS).toFixed(1)} days`);
  const interval = input.interval ?? null;
  if (interval !== null) {
    const bucket = intervalMs(interval);
    if (bucket === undefined)
      invalid(
        `${field}.interval`,
        `expected a duration from 1m to 1d such as 5m, 1h or 1d, but got "${interval}"`,
      );
    const buckets = Math.ceil(span / bucket);
    if (buckets > MAX_BUCKETS)
      invalid(
        `${field}.interval`,
        `expected at most ${MAX_BUCKETS} buckets, but "${interval}" makes ${buckets}`,
      );
  }
  return { start: start.toISOString(), end: end.toISOString(), interval };
}

/**
 * A schedule: a five-field cron expression (minute hour day-of-month month day-of-week) or an alias
 * such as @daily, ticking on whole minutes, and an IANA time zone ('UTC' by default).
 */
export function normaliseSchedule(input: ScheduleInput): { cron: string; timezone: string } {
  const cron = input.cron.trim().replace(/\s+/g, ' ');
  const timezone = input.timezone?.trim() || 'UTC';
  const expected =
    'expected five fields (minute hour day-of-month month day-of-week) such as "0 6 * * 1-5", or @hourly, @daily, @weekly, @monthly, @yearly';
  const isAlias = cron.startsWith('@');
  if (isAlias ? !CRON_ALIASES.includes(cron) : cron.split(' ').length !== 5)
    invalid('schedule.cron', `${expected}, but got "${input.cron}"`);
  // H picks a random minute per parse: two schedulers would not agree on the ticks.
  const hashed = cron.split(/[\s,]/).some((part) => /^H($|[/(])/i.test(part));
  if (hashed) invalid('schedule.cron', `H (hashed values) is not supported, but got "${cron}"`);
  // Offsets such as +01:00 are accepted by Intl but are not IANA zones, and follow no daylight saving.
  if (/^[+-]/.test(timezone))
    invalid('schedule.timezone', `expected an IANA time zone such as Europe/Berlin, but got "${timezone}"`);
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    invalid(
      'schedule.timezone',
      `expected an IANA time zone such as Europe/Berlin or UTC, but got "${timezone}"`,
    );
  }
  try {
    CronExpressionParser.parse(cron, { tz: timezone }).next();
  } catch (error) {
    invalid('schedule.cron', `${expected}, but got "${input.cron}" (${(error as Error).message})`);
  }
  return { cron, timezone };
}

/** A SCHEDULED report runs by its schedule, so it needs one. */
function checkScheduled(type: ReportRow['type'], schedule: ReportRow['schedule']): void {
  if (type === 'SCHEDULED' && !schedule)
    invalid('schedule', 'a SCHEDULED report needs a schedule (cron and timezone)');
}

/** Validates createReport's input into the report to store. */
export function normaliseNewReport(input: CreateReportInput, kpis: KpiDimensions): NewReport {
  const report: NewReport = {
    name: normaliseName(input.name),
    type: input.type,
    config: normaliseConfig(input.config, kpis),
    schedule: input.schedule ? normaliseSchedule(input.schedule) : null,
    format: input.format ?? 'CSV',
  };
  checkScheduled(report.type, report.schedule);
  return report;
}

/**
 * Validates updateReport's input into the changes to apply to `existing`. Only what changes is
 * checked, so a report whose KPI has since lost a dimension can still be renamed.
 */
export function normaliseChanges(
  input: UpdateReportInput,
  existing: ReportRow,
  kpis: KpiDimensions,
): ReportChanges {
  const changes: ReportChanges = {};
  if (input.name != null) changes.name = normaliseName(input.name);
  if (input.config != null) changes.config = normaliseConfig(input.config, kpis);
  if (input.schedule !== undefined)
    changes.schedule = input.schedule === null ? null : normaliseSchedule(input.schedule);
  if (input.format != null) changes.format = input.format;
  checkScheduled(existing.type, changes.schedule === undefined ? existing.schedule : changes.schedule);
  return changes;
}
