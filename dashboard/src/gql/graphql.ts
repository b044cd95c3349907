/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
/** Whether an insight's episode is still going on. */
export type InsightStatus =
  /** The KPI recovered; this is the insight's last version. */
  | 'CLOSED'
  /** The condition lasts; the insight is updated in place (same id) while it does. */
  | 'OPEN';

/** Where a report or one of its generations stands. */
export type ReportStatus =
  /** The generation finished; its output can be downloaded. */
  | 'COMPLETED'
  /** Not valid yet (a stored report never is: it is stored once it validates). */
  | 'DRAFT'
  /** The generation failed; error says why. */
  | 'FAILED'
  /** A generation waits for a worker. */
  | 'QUEUED'
  /** Valid and never generated yet. */
  | 'READY'
  /** A generation is being computed. */
  | 'RUNNING';

/** How urgent an insight is. */
export type Severity =
  /** Needs a look now. */
  | 'CRITICAL'
  /** Worth knowing; nothing needs doing. */
  | 'INFO'
  /** Needs a look soon. */
  | 'WARNING';

/** A time range, optionally cut into buckets. */
export type TimeRangeInput = {
  /** Exclusive end. */
  end: string;
  /** Bucket size: 1m, 5m, 15m, 1h, 1d ... */
  interval?: string | null | undefined;
  /** Inclusive start. */
  start: string;
};

export type DashboardQueryVariables = Exact<{
  lastHour: TimeRangeInput;
}>;


export type DashboardQuery = { kpis: Array<{ code: string, name: string, unit: string | null, window: string, current: { value: number | null, at: string } | null, series: Array<{ value: number | null, at: string }>, insights: Array<{ id: string, context: string, kind: string, severity: Severity, title: string, status: InsightStatus, at: string }> }>, reports: Array<{ id: string, name: string, lastRun: { id: string, status: ReportStatus, progress: number, finishedAt: string | null } | null }> };

export type InsightItemFragment = { id: string, context: string, kind: string, severity: Severity, title: string, status: InsightStatus, at: string };

export type KpiUpdatedSubscriptionVariables = Exact<{
  codes: Array<string | number> | string | number;
  after?: string | null | undefined;
}>;


export type KpiUpdatedSubscription = { kpiUpdated: { value: number | null, at: string, cursor: string, kpi: { code: string } } };

export type NewInsightsSubscriptionVariables = Exact<{
  context: string;
}>;


export type NewInsightsSubscription = { newInsights: { id: string, context: string, kind: string, severity: Severity, title: string, status: InsightStatus, at: string } };

export type ReportProgressSubscriptionVariables = Exact<{
  id: string | number;
}>;


export type ReportProgressSubscription = { reportProgress: { reportId: string, generationId: string, status: ReportStatus, progress: number, message: string | null } };

export const InsightItemFragmentDoc = {"kind":"Document","definitions":[{"kind":"FragmentDefinition","name":{"kind":"Name","value":"InsightItem"},"typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"Insight"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"context"}},{"kind":"Field","name":{"kind":"Name","value":"kind"}},{"kind":"Field","name":{"kind":"Name","value":"severity"}},{"kind":"Field","name":{"kind":"Name","value":"title"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"at"}}]}}]} as unknown as DocumentNode<InsightItemFragment, unknown>;
export const DashboardDocument = {"__meta__":{"hash":"95d65fc0a10a3b7ea9a6f6aa49b85921ba641a189e127878dc121a1ad92cf39e"}} as unknown as DocumentNode<DashboardQuery, DashboardQueryVariables>;
export const KpiUpdatedDocument = {"__meta__":{"hash":"5ad8972a3d8719fc4d39b2446e34555c7975c62983ead1691df2d1dd17553941"}} as unknown as DocumentNode<KpiUpdatedSubscription, KpiUpdatedSubscriptionVariables>;
export const NewInsightsDocument = {"__meta__":{"hash":"51b74ffff4d87d00c81b51bfead3f0f047e32562ce317e368a617e69d6c6de6f"}} as unknown as DocumentNode<NewInsightsSubscription, NewInsightsSubscriptionVariables>;
export const ReportProgressDocument = {"__meta__":{"hash":"68f1e0179b74364c8f280593f54a3596b2d5871048ffa0424253817259f2c42b"}} as unknown as DocumentNode<ReportProgressSubscription, ReportProgressSubscriptionVariables>;