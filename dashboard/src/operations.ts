// The dashboard's GraphQL operations. `npm run codegen` types them into ./gql and writes the
// persisted-operation manifest, so the page sends each one by its documentId, never its text.
import { graphql } from './gql/index.ts';

/** Everything the page shows at first, and again after a reconnect: KPIs with their last hour, reports. */
export const DashboardQuery = graphql(`
  query Dashboard($lastHour: TimeRangeInput!) {
    kpis {
      code
      name
      unit
      window
      current {
        value
        at
      }
      series(timeRange: $lastHour) {
        value
        at
      }
      insights(limit: 3) {
        ...InsightItem
      }
    }
    reports {
      id
      name
      lastRun {
        id
        status
        progress
        finishedAt
      }
    }
  }
`);

/** What the insights list shows of one insight. */
export const InsightItem = graphql(`
  fragment InsightItem on Insight {
    id
    context
    kind
    severity
    title
    status
    at
  }
`);

/** Live values of the tiles' KPIs; `after` resumes from the last cursor seen, nothing missed. */
export const KpiUpdatedSubscription = graphql(`
  subscription KpiUpdated($codes: [ID!]!, $after: String) {
    kpiUpdated(codes: $codes, after: $after) {
      value
      at
      cursor
      kpi {
        code
      }
    }
  }
`);

/** Insights about one KPI as they open, change and close. */
export const NewInsightsSubscription = graphql(`
  subscription NewInsights($context: String!) {
    newInsights(context: $context) {
      ...InsightItem
    }
  }
`);

/** Progress of one report's generations. */
export const ReportProgressSubscription = graphql(`
  subscription ReportProgress($id: ID!) {
    reportProgress(id: $id) {
      reportId
      generationId
      status
      progress
      message
    }
  }
`);
