import { TENANT_PATTERN } from '../lib/auth.ts';

/** The JetStream streams of runtime.md, by name. */
export const Stream = {
  EVENTS: 'EVENTS',
  KPI: 'KPI',
  INSIGHTS: 'INSIGHTS',
  REPORTS: 'REPORTS',
  METADATA: 'METADATA',
} as const;
export type StreamName = (typeof Stream)[keyof typeof Stream];

/** A subject token may hold dots (hierarchy) but never wildcards, spaces or control characters. */
const DETAIL_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Raised when a value cannot be placed in a subject. */
export class SubjectError extends Error {
  override name = 'SubjectError';
}

function tenantToken(tenant: string): string {
  if (!TENANT_PATTERN.test(tenant))
    throw new SubjectError(`expected a tenant id, but got ${JSON.stringify(tenant)}`);
  return tenant;
}

function detailToken(what: string, value: string): string {
  if (!DETAIL_PATTERN.test(value) || value.length > 200) {
    throw new SubjectError(
      `expected ${what} of letters, digits, "_", "-" and dots, but got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Subject builders: the only place subject strings are spelled. */
export const subjects = {
  event: (tenant: string, eventName: string) =>
    `events.${tenantToken(tenant)}.${detailToken('an event name', eventName)}`,
  kpi: (tenant: string, code: string) => `kpi.${tenantToken(tenant)}.${detailToken('a KPI code', code)}`,
  insight: (tenant: string, context: string) =>
    `insights.${tenantToken(tenant)}.${detailToken('a context', context)}`,
  reportJobs: (tenant: string) => `reports.${tenantToken(tenant)}.jobs`,
  metadataChanged: (tenant: string) => `metadata.${tenantToken(tenant)}.changed`,
  /** Core NATS (no stream): the writer tells calculators which KPIs' rollups changed. */
  rollupsUpdated: (tenant: string) => `rollups.${tenantToken(tenant)}.updated`,
  /** Every tenant's rollupsUpdated, for subscribing. */
  allRollupsUpdated: 'rollups.*.updated',
} as const;

/** Whether a string can be used as the detail part of a subject (event names, KPI codes, contexts). */
export function isSubjectToken(value: string): boolean {
  return DETAIL_PATTERN.test(value) && value.length <= 200;
}
