// The example client's operations. `npm run codegen` reads the graphql() calls below and writes their
// result and variable types to ./gql/, so each call returns a TypedDocumentString.
import { graphql } from './gql/gql.ts';

/** Every KPI of the caller's tenant with its current value. */
export const kpiOverviewQuery = graphql(`
  query KpiOverview {
    kpis {
      code
      name
      unit
      window
      current {
        value
        at
      }
    }
  }
`);

/** Live values of some KPIs; `after` resumes after a cursor received earlier. */
export const kpiUpdatesSubscription = graphql(`
  subscription KpiUpdates($codes: [ID!]!, $after: String) {
    kpiUpdated(codes: $codes, after: $after) {
      value
      at
      cursor
      kpi {
        code
        name
        unit
      }
    }
  }
`);
