/* eslint-disable */
import * as types from './graphql.ts';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query Dashboard($lastHour: TimeRangeInput!) {\n    kpis {\n      code\n      name\n      unit\n      window\n      current {\n        value\n        at\n      }\n      series(timeRange: $lastHour) {\n        value\n        at\n      }\n      insights(limit: 3) {\n        ...InsightItem\n      }\n    }\n    reports {\n      id\n      name\n      lastRun {\n        id\n        status\n        progress\n        finishedAt\n      }\n    }\n  }\n": typeof types.DashboardDocument,
    "\n  fragment InsightItem on Insight {\n    id\n    context\n    kind\n    severity\n    title\n    status\n    at\n  }\n": typeof types.InsightItemFragmentDoc,
    "\n  subscription KpiUpdated($codes: [ID!]!, $after: String) {\n    kpiUpdated(codes: $codes, after: $after) {\n      value\n      at\n      cursor\n      kpi {\n        code\n      }\n    }\n  }\n": typeof types.KpiUpdatedDocument,
    "\n  subscription NewInsights($context: String!) {\n    newInsights(context: $context) {\n      ...InsightItem\n    }\n  }\n": typeof types.NewInsightsDocument,
    "\n  subscription ReportProgress($id: ID!) {\n    reportProgress(id: $id) {\n      reportId\n      generationId\n      status\n      progress\n      message\n    }\n  }\n": typeof types.ReportProgressDocument,
};
const documents: Documents = {
    "\n  query Dashboard($lastHour: TimeRangeInput!) {\n    kpis {\n      code\n      name\n      unit\n      window\n      current {\n        value\n        at\n      }\n      series(timeRange: $lastHour) {\n        value\n        at\n      }\n      insights(limit: 3) {\n        ...InsightItem\n      }\n    }\n    reports {\n      id\n      name\n      lastRun {\n        id\n        status\n        progress\n        finishedAt\n      }\n    }\n  }\n": types.DashboardDocument,
    "\n  fragment InsightItem on Insight {\n    id\n    context\n    kind\n    severity\n    title\n    status\n    at\n  }\n": types.InsightItemFragmentDoc,
    "\n  subscription KpiUpdated($codes: [ID!]!, $after: String) {\n    kpiUpdated(codes: $codes, after: $after) {\n      value\n      at\n      cursor\n      kpi {\n        code\n      }\n    }\n  }\n": types.KpiUpdatedDocument,
    "\n  subscription NewInsights($context: String!) {\n    newInsights(context: $context) {\n      ...InsightItem\n    }\n  }\n": types.NewInsightsDocument,
    "\n  subscription ReportProgress($id: ID!) {\n    reportProgress(id: $id) {\n      reportId\n      generationId\n      status\n      progress\n      message\n    }\n  }\n": types.ReportProgressDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Dashboard($lastHour: TimeRangeInput!) {\n    kpis {\n      code\n      name\n      unit\n      window\n      current {\n        value\n        at\n      }\n      series(timeRange: $lastHour) {\n        value\n        at\n      }\n      insights(limit: 3) {\n        ...InsightItem\n      }\n    }\n    reports {\n      id\n      name\n      lastRun {\n        id\n        status\n        progress\n        finishedAt\n      }\n    }\n  }\n"): (typeof documents)["\n  query Dashboard($lastHour: TimeRangeInput!) {\n    kpis {\n      code\n      name\n      unit\n      window\n      current {\n        value\n        at\n      }\n      series(timeRange: $lastHour) {\n        value\n        at\n      }\n      insights(limit: 3) {\n        ...InsightItem\n      }\n    }\n    reports {\n      id\n      name\n      lastRun {\n        id\n        status\n        progress\n        finishedAt\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment InsightItem on Insight {\n    id\n    context\n    kind\n    severity\n    title\n    status\n    at\n  }\n"): (typeof documents)["\n  fragment InsightItem on Insight {\n    id\n    context\n    kind\n    severity\n    title\n    status\n    at\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription KpiUpdated($codes: [ID!]!, $after: String) {\n    kpiUpdated(codes: $codes, after: $after) {\n      value\n      at\n      cursor\n      kpi {\n        code\n      }\n    }\n  }\n"): (typeof documents)["\n  subscription KpiUpdated($codes: [ID!]!, $after: String) {\n    kpiUpdated(codes: $codes, after: $after) {\n      value\n      at\n      cursor\n      kpi {\n        code\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription NewInsights($context: String!) {\n    newInsights(context: $context) {\n      ...InsightItem\n    }\n  }\n"): (typeof documents)["\n  subscription NewInsights($context: String!) {\n    newInsights(context: $context) {\n      ...InsightItem\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription ReportProgress($id: ID!) {\n    reportProgress(id: $id) {\n      reportId\n      generationId\n      status\n      progress\n      message\n    }\n  }\n"): (typeof documents)["\n  subscription ReportProgress($id: ID!) {\n    reportProgress(id: $id) {\n      reportId\n      generationId\n      status\n      progress\n      message\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;