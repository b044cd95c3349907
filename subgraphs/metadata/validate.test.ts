import { describe, expect, it } from 'vitest';
import { windowMinutes } from '../../lib/durations.ts';
import { checkFormula, normaliseKpiInput, type KpiInput } from './validate.ts';

const base: KpiInput = {
  code: 'checkout.revenue',
  name: 'Revenue',
  eventName: 'checkout.completed',
  aggregation: 'SUM',
  valueField: 'amount',
};
const issuesOf = (input: Partial<KpiInput>) =>
  normaliseKpiInput({ ...base, ...input }).issues.map((i) => i.field);

describe('KPI definition validation', () => {
  it('fills the defaults of the contract', () => {
    const { definition, issues } = normaliseKpiInput(base);
    expect(issues).toEqual([]);
    expect(definition).toMatchObject({
      dimensions: [],
      refreshSeconds: 1,
      window: '24h',
      formula: null,
      unit: null,
    });
  });

  it('checks the code format', () => {
    expect(issuesOf({ code: 'Checkout.Revenue' })).toEqual(['code']);
    expect(issuesOf({ code: 'checkout..revenue' })).toEqual(['code']);
    expect(issuesOf({ code: 'web.page-views_2' })).toEqual([]);
  });

  it('ties aggregation, valueField, eventName and formula together', () => {
    expect(issuesOf({ aggregation: 'COUNT' })).toEqual(['valueField']);
    expect(issuesOf({ aggregation: 'COUNT', valueField: null })).toEqual([]);
    expect(issuesOf({ aggregation: 'P95', valueField: null })).toEqual(['valueField']);
    expect(issuesOf({ eventName: null })).toEqual(['eventName']);
    expect(issuesOf({ eventName: 'checkout completed' })).toEqual(['eventName']);
    expect(issuesOf({ formula: 'a.b * 2' })).toEqual(['formula']);
    expect(issuesOf({ aggregation: 'FORMULA', formula: null })).toEqual([
      'formula',
      'eventName',
      'valueField',
    ]);
    expect(issuesOf({ aggregation: 'FORMULA', formula: 'a.b', eventName: null, valueField: null })).toEqual(
      [],
    );
  });

  it('checks dimensions, refreshSeconds and window', () => {
    expect(issuesOf({ dimensions: ['country', 'country'] })).toEqual(['dimensions']);
    expect(issuesOf({ dimensions: ['bad name'] })).toEqual(['dimensions']);
    expect(issuesOf({ refreshSeconds: 0 })).toEqual(['refreshSeconds']);
    expect(issuesOf({ window: '24 hours' })).toEqual(['window']);
    expect(issuesOf({ window: '401d' })).toEqual(['window']);
    expect(windowMinutes('15m')).toBe(15);
    expect(windowMinutes('7d')).toBe(10_080);
  });
});

describe('formula checks', () => {
  const formula = (code: string, text: string) =>
    normaliseKpiInput({ code, name: code, aggregation: 'FORMULA', formula: text }).definition;

  it('accepts references to existing KPIs', () => {
    expect(
      checkFormula(formula('conv', 'orders / sessions * 100'), new Set(['orders', 'sessions']), new Map()),
    ).toEqual([]);
  });

  it('names unknown references', () => {
    expect(checkFormula(formula('conv', 'orders / visits'), new Set(['orders']), new Map())).toEqual([
      { field: 'formula', message: 'unknown KPI "visits"' },
    ]);
  });

  it('refuses self references and longer cycles', () => {
    expect(checkFormula(formula('a', 'a + 1'), new Set(['a']), new Map())[0]?.message).toBe(
      'formula makes a cycle: a -> a',
    );
    const graph = new Map([
      ['b', ['c']],
      ['c', ['a']],
    ]);
    expect(checkFormula(formula('a', 'b * 2'), new Set(['a', 'b', 'c']), graph)[0]?.message).toBe(
      'formula makes a cycle: a -> b -> c -> a',
    );
  });

  it('reports a syntax error with its position', () => {
    expect(checkFormula(formula('a', 'orders * '), new Set(['orders']), new Map())[0]?.message).toMatch(
      /at position 8, but got end of formula/,
    );
  });
});
