// The dashboard bench's operation: the query the dashboard loads first and on every refresh
// (dashboard/src/operations.ts: Dashboard), read from its persisted-operation manifest so that the bench
// follows the page. It crosses all four subgraphs: kpis (metadata), their current value and last hour
// (metrics), their latest insights (insights), and the reports with their last run (reports).
import { readFileSync } from 'node:fs';
import { Kind, parse, print, visit, type FieldNode } from 'graphql';
import { DashboardDocument } from '../../dashboard/src/gql/graphql.ts';

const manifest = JSON.parse(
  readFileSync(new URL('../../dashboard/src/gql/persisted-documents.json', import.meta.url), 'utf8'),
) as Record<string, string>;
const { hash } = (DashboardDocument as unknown as { __meta__: { hash: string } }).__meta__;

/**
 * The Dashboard query without `current { at }`: the metrics subgraph stamps a live value with the time it
 * was read, so no two answers would be equal. Everything else is as the page asks for it.
 */
export const DASHBOARD_QUERY = print(
  visit(parse(manifest[hash]!), {
    Field(field) {
      if (field.name.value !== 'current' || !field.selectionSet) return undefined;
      const selections = field.selectionSet.selections.filter(
        (s) => !(s.kind === Kind.FIELD && s.name.value === 'at'),
      );
      return { ...field, selectionSet: { ...field.selectionSet, selections } } satisfies FieldNode;
    },
  }),
);

/** The query's variables as the page sends them, for the hour that ends at `end`. */
export function dashboardVariables(end: Date) {
  const start = new Date(end.getTime() - 3_600_000);
  return { lastHour: { start: start.toISOString(), end: end.toISOString(), interval: '1m' } };
}
