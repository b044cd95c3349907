// Field authorization at the gateway over the committed supergraph.graphql: which fields a principal's
// scopes (its roles' actions and its token's scopes claim) let it select, fragments included.
import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { effectiveScopes, unmetRequirement, type Principal, type Role } from '../../lib/auth.ts';
import { loadSupergraph } from '../execution/supergraph.ts';
import { deniedFields, scopeRequirementsOf } from './useFieldAuthorization.ts';

const SDL = readFileSync(new URL('../../supergraph.graphql', import.meta.url), 'utf8');
const supergraph = loadSupergraph(SDL);

const principal = (roles: Role[], scopes: string[] = []): Principal => ({
  tenant: 'acme',
  subject: 'someone',
  roles,
  scopes,
});

/** The refusals of a document's (only or named) operation: `field: message` per denied field. */
const refusals = (who: Principal, document: string, operationName?: string) =>
  deniedFields(supergraph, parse(document), operationName, who).map(
    (error) => `${error.extensions['field'] as string}: ${error.message}`,
  );

const DEFINE_KPI = `mutation { defineKpi(input: { code: "a.b", name: "x", eventName: "e", aggregation: COUNT }) { code name } }`;

describe('the requirements read from the supergraph', () => {
  it('holds each field to the action its resolver checked before, and entity types to read', () => {
    const { fields, types } = scopeRequirementsOf(supergraph);
    expect(Object.fromEntries(fields)).toEqual({
      'Query.insights': [['read']],
      'Query.alerts': [['read']],
      'Query.kpis': [['read']],
      'Query.kpi': [['read']],
      'Query.metrics': [['read']],
      'Query.reports': [['read']],
      'Query.report': [['read']],
      'Kpi.current': [['read']],
      'Kpi.series': [['read']],
      'Kpi.insights': [['read']],
      'Kpi.alerts': [['read']],
      'Mutation.defineAlert': [['define']],
      'Mutation.deleteAlert': [['define']],
      'Mutation.defineKpi': [['define']],
      'Mutation.ingestEvents': [['ingest']],
      'Mutation.createReport': [['report']],
      'Mutation.updateReport': [['report']],
      'Mutation.generateReport': [['report']],
      'Subscription.newInsights': [['subscribe']],
      'Subscription.kpiUpdated': [['subscribe']],
      'Subscription.metricUpdates': [['subscribe']],
      'Subscription.reportProgress': [['subscribe']],
    });
    expect(Object.fromEntries(types)).toEqual({
      Insight: [['read']],
      Kpi: [['read']],
      Report: [['read']],
    });
  });

  it('reads them once per loaded supergraph, and a reloaded supergraph brings its own', () => {
    expect(scopeRequirementsOf(supergraph)).toBe(scopeRequirementsOf(supergraph));
    const stricter = loadSupergraph(
      SDL.replace(
        /(kpis: \[Kpi!\]! @join__field\(graph: METADATA\)) @requiresScopes\(scopes: \[\["read"\]\]\)/,
        '$1 @requiresScopes(scopes: [["read", "audit"]])',
      ),
    );
    expect(scopeRequirementsOf(stricter).fields.get('Query.kpis')).toEqual([['read', 'audit']]);
    const viewer = principal(['viewer']);
    expect(deniedFields(supergraph, parse('{ kpis { code } }'), undefined, viewer)).toEqual([]);
    expect(
      deniedFields(stricter, parse('{ kpis { code } }'), undefined, viewer).map((e) => e.message),
    ).toEqual(['not allowed to read and audit: roles [viewer] do not grant it']);
  });
});

describe('deniedFields', () => {
  it('refuses a field the roles do not grant, one FORBIDDEN error with its coordinate and HTTP 403', () => {
    const [error, ...others] = deniedFields(supergraph, parse(DEFINE_KPI), undefined, principal(['viewer']));
    expect(others).toEqual([]);
    expect(error?.message).toBe('not allowed to define: roles [viewer] do not grant it');
    expect(error?.extensions).toEqual({
      code: 'FORBIDDEN',
      field: 'Mutation.defineKpi',
      http: { status: 403 },
    });
    expect(error?.locations).toEqual([{ line: 1, column: 12 }]);
    expect(refusals(principal(['analyst']), DEFINE_KPI)).toEqual([]);
  });

  it('names each denied field once, in document order, and nothing below it', () => {
    const ingest = principal(['ingest']);
    expect(refusals(ingest, '{ kpis { code name } again: kpis { code } report(id: "1") { name } }')).toEqual([
      'Query.kpis: not allowed to read: roles [ingest] do not grant it',
      'Query.report: not allowed to read: roles [ingest] do not grant it',
    ]);
  });

  it("holds a field to its type's requirement too, whatever list or non-null wraps it", () => {
    const subscriber = principal([], ['subscribe']);
    const live = `subscription { kpiUpdated(codes: ["a"]) { value kpi { name } } }`;
    expect(refusals(subscriber, live)).toEqual([
      'KpiValue.kpi: not allowed to read: roles [] and scopes [subscribe] do not grant it',
    ]);
    expect(refusals(subscriber, `subscription { newInsights(context: "a") { id } }`)).toEqual([
      'Subscription.newInsights: not allowed to read: roles [] and scopes [subscribe] do not grant it',
    ]);
    expect(refusals(principal([], ['read']), '{ alerts { kpi { name insights { id } } } }')).toEqual([]);
  });

  it('finds a denied field hidden in fragments, inline or spread, nested or spread twice', () => {
    const viewer = principal(['viewer']);
    const hidden = `
      mutation Hidden { ...Outer ...Outer }
      fragment Outer on Mutation { ... on Mutation { ...Inner } }
      fragment Inner on Mutation { ingestEvents(events: []) { accepted } }`;
    expect(refusals(viewer, hidden)).toEqual([
      'Mutation.ingestEvents: not allowed to ingest: roles [viewer] do not grant it',
    ]);
    const onKpi = `{ __typename } fragment Fields on Kpi { name }`;
    expect(refusals(principal(['ingest']), onKpi)).toEqual([]);
  });

  it('walks only the operation that runs, with the fragments it spreads', () => {
    const document = `
      query Read { kpis { ...Code } }
      mutation Define { defineKpi(input: { code: "a.b", name: "x", eventName: "e", aggregation: COUNT }) { code } }
      fragment Code on Kpi { code }
      fragment Unused on Mutation { createReport(input: { name: "n", type: ADHOC, config: { metrics: [], timeRange: { start: "2026-01-01T00:00:00Z", end: "2026-01-02T00:00:00Z" } } }) { id } }`;
    const viewer = principal(['viewer']);
    expect(refusals(viewer, document, 'Read')).toEqual([]);
    expect(refusals(viewer, document, 'Define')).toEqual([
      'Mutation.defineKpi: not allowed to define: roles [viewer] do not grant it',
    ]);
  });

  it('lets anyone select introspection fields and __typename', () => {
    const introspection = `{ __typename __schema { queryType { name } types { name fields { name } } } __type(name: "Kpi") { name } }`;
    expect(refusals(principal([]), introspection)).toEqual([]);
    expect(refusals(principal(['ingest']), '{ kpis { __typename } }')).toEqual([
      'Query.kpis: not allowed to read: roles [ingest] do not grant it',
    ]);
  });

  it('holds subscriptions to subscribe', () => {
    const live = `subscription { kpiUpdated(codes: ["a"]) { value kpi { name } } }`;
    expect(refusals(principal(['viewer']), live)).toEqual([]);
    expect(refusals(principal(['ingest']), live)).toEqual([
      'Subscription.kpiUpdated: not allowed to subscribe: roles [ingest] do not grant it',
    ]);
  });

  it('counts the token scopes claim beside the roles, and says so when it refuses', () => {
    expect(refusals(principal(['viewer'], ['define']), DEFINE_KPI)).toEqual([]);
    expect(refusals(principal([], ['define', 'read']), DEFINE_KPI)).toEqual([]);
    expect(refusals(principal([], ['define']), DEFINE_KPI)).toEqual([
      'Mutation.defineKpi: not allowed to read: roles [] and scopes [define] do not grant it',
    ]);
    expect(refusals(principal([], ['reports:admin']), '{ alerts { id } }')).toEqual([
      'Query.alerts: not allowed to read: roles [] and scopes [reports:admin] do not grant it',
    ]);
  });
});

describe('effective scopes', () => {
  it('are the scopes claim plus the actions of every role', () => {
    expect([...effectiveScopes(principal(['viewer'], ['x']))].sort()).toEqual(['read', 'subscribe', 'x']);
    expect([...effectiveScopes(principal(['ingest', 'analyst']))].sort()).toEqual([
      'define',
      'ingest',
      'read',
      'report',
      'subscribe',
    ]);
  });

  it('meet a requirement when they hold every scope of one of its sets', () => {
    const either = [['read', 'x'], ['ingest']];
    expect(unmetRequirement(principal(['ingest']), [either])).toBeUndefined();
    expect(unmetRequirement(principal(['viewer'], ['x']), [either])).toBeUndefined();
    expect(unmetRequirement(principal(['viewer']), [either])).toBe(either);
    expect(unmetRequirement(principal(['admin']), [[['read']], [['define']]])).toBeUndefined();
    expect(unmetRequirement(principal(['viewer']), [[['read']], [['define']]])).toEqual([['define']]);
  });
});
