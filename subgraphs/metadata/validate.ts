import { KPI_CODE, FormulaError, findCycle, formulaReferences, parseFormula } from '../../lib/formula.ts';
import { windowMinutes } from '../../lib/durations.ts';
import { appError } from '../../lib/errors.ts';
import { isSubjectToken } from '../../streams/subjects.ts';
import type { KpiDefinition } from './store.ts';

/** The input of defineKpi as GraphQL delivers it. */
export interface KpiInput {
  code: string;
  name: string;
  description?: string | null;
  unit?: string | null;
  eventName?: string | null;
  aggregation: KpiDefinition['aggregation'];
  valueField?: string | null;
  formula?: string | null;
  dimensions?: string[] | null;
  refreshSeconds?: number | null;
  window?: string | null;
}

const ATTRIBUTE_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const MAX_WINDOW_MINUTES = 400 * 1440;

interface Issue {
  field: string;
  message: string;
}

/** Checks the fields of one definition on their own; returns the normalised definition or every issue. */
export function normaliseKpiInput(input: KpiInput): { definition: KpiDefinition; issues: Issue[] } {
  const issues: Issue[] = [];
  const fail = (field: string, message: string) => issues.push({ field, message });
  const text = (value: string | null | undefined) => (value?.trim() ? value.trim() : null);
  const formulaKpi = input.aggregation === 'FORMULA';
  const definition: KpiDefinition = {
    code: input.code,
    name: input.name.trim(),
    description: text(input.description),
    unit: text(input.unit),
    eventName: text(input.eventName),
    aggregation: input.aggregation,
    valueField: text(input.valueField),
    formula: text(input.formula),
    dimensions: input.dimensions ?? [],
    refreshSeconds: input.refreshSeconds ?? 1,
    window: input.window ?? '24h',
  };

  if (!KPI_CODE.test(definition.code) || definition.code.length > 100) {
    fail(
      'code',
      `expected lowercase segments separated by dots, e.g. checkout.revenue, but got "${input.code}"`,
    );
  }
  if (!definition.name || definition.name.length > 200) fail('name', 'expected 1 to 200 characters');
  if ((definition.description?.length ?? 0) > 2000) fail('description', 'expected at most 2000 characters');
  if ((definition.unit?.length ?? 0) > 32) fail('unit', 'expected at most 32 characters');
  if (formulaKpi) {
    if (!definition.formula) fail('formula', 'a FORMULA KPI needs a formula');
    if (definition.eventName)
      fail('eventName', 'a FORMULA KPI is computed from other KPIs, not from an event');
    if (definition.valueField) fail('valueField', 'a FORMULA KPI has no valueField');
    if (definition.dimensions.length) fail('dimensions', 'a FORMULA KPI has no dimensions');
  } else {
    if (definition.formula)
      fail('formula', `only FORMULA KPIs take a formula, not ${definition.aggregation}`);
    if (!definition.eventName)
      fail('eventName', `a ${definition.aggregation} KPI needs the event it is computed from`);
    else if (!isSubjectToken(definition.eventName)) {
      fail('eventName', `expected letters, digits, "_", "-" and dots, but got "${definition.eventName}"`);
    }
    if (definition.aggregation === 'COUNT') {
      if (definition.valueField) fail('valueField', 'a COUNT KPI counts events and takes no valueField');
    } else if (!definition.valueField) {
      fail('valueField', `a ${definition.aggregation} KPI needs the attribute it aggregates`);
    }
  }
  if (definition.valueField && !ATTRIBUTE_PATH.test(definition.valueField)) {
    fail(
      'valueField',
      `expected an attribute path such as amount or order.total, but got "${definition.valueField}"`,
    );
  }
  if (definition.dimensions.length > 8) fail('dimensions', 'expected at most 8 dimensions');
  if (new Set(definition.dimensions).size !== definition.dimensions.length)
    fail('dimensions', 'expected distinct names');
  for (const dimension of definition.dimensions) {
    if (!ATTRIBUTE_PATH.test(dimension))
      fail('dimensions', `expected attribute names, but got "${dimension}"`);
  }
  if (
    !Number.isInteger(definition.refreshSeconds) ||
    definition.refreshSeconds < 1 ||
    definition.refreshSeconds > 86_400
  ) {
    fail('refreshSeconds', `expected 1 to 86400 seconds, but got ${definition.refreshSeconds}`);
  }
  const minutes = windowMinutes(definition.window);
  if (minutes === undefined || minutes < 1 || minutes > MAX_WINDOW_MINUTES) {
    fail(
      'window',
      `expected a duration from 1m to 400d such as 15m, 24h or 7d, but got "${definition.window}"`,
    );
  }
  return { definition, issues };
}

/**
 * Checks a FORMULA against the tenant's other definitions: it parses, references only existing
 * KPIs, and creates no cycle. `formulas` maps each existing code to the codes its formula uses.
 */
export function checkFormula(
  definition: KpiDefinition,
  existing: Set<string>,
  formulas: Map<string, string[]>,
): Issue[] {
  if (definition.aggregation !== 'FORMULA' || !definition.formula) return [];
  let references: string[];
  try {
    references = formulaReferences(parseFormula(definition.formula));
  } catch (error) {
    if (error instanceof FormulaError) return [{ field: 'formula', message: error.message }];
    throw error;
  }
  const unknown = references.filter((code) => code !== definition.code && !existing.has(code));
  if (unknown.length)
    return [{ field: 'formula', message: `unknown KPI ${unknown.map((c) => `"${c}"`).join(', ')}` }];
  const graph = new Map(formulas);
  graph.set(definition.code, references);
  const cycle = findCycle(graph, definition.code);
  if (cycle) return [{ field: 'formula', message: `formula makes a cycle: ${cycle.join(' -> ')}` }];
  return [];
}

/** Throws BAD_USER_INPUT listing every issue, or returns when there are none. */
export function assertNoIssues(issues: Issue[]): void {
  if (!issues.length) return;
  const message = issues.map((i) => `${i.field}: ${i.message}`).join('; ');
  throw appError('BAD_USER_INPUT', `invalid KPI definition: ${message}`, { issues });
}
