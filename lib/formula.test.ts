import { describe, it, expect } from 'vitest';
import { FormulaError, evaluateFormula, findCycle, formulaReferences, parseFormula } from './formula.ts';

/** Parses and evaluates a formula against a fixed table of KPI values. */
function run(source: string, table: Record<string, number | null> = {}): number | null {
  return evaluateFormula(parseFormula(source), (code) => table[code]);
}

/** The FormulaError thrown by parsing `source`; fails the test if parsing succeeds. */
function failure(source: string): FormulaError {
  try {
    parseFormula(source);
  } catch (error) {
    expect(error).toBeInstanceOf(FormulaError);
    return error as FormulaError;
  }
  throw new Error(`expected ${JSON.stringify(source)} to fail`);
}

describe('parseFormula', () => {
  it('gives * and / precedence over + and -', () => {
    expect(run('1 + 2 * 3')).toBe(7);
    expect(run('10 - 6 / 2')).toBe(7);
    expect(parseFormula('a + b * c')).toEqual({
      kind: 'binary',
      op: '+',
      left: { kind: 'ref', code: 'a' },
      right: { kind: 'binary', op: '*', left: { kind: 'ref', code: 'b' }, right: { kind: 'ref', code: 'c' } },
    });
  });

  it('associates left', () => {
    expect(run('8 / 4 / 2')).toBe(1);
    expect(run('10 - 4 - 3')).toBe(3);
    expect(run('2 * 3 / 6 * 4')).toBe(4);
  });

  it('honours parentheses', () => {
    expect(run('(1 + 2) * 3')).toBe(9);
    expect(run('10 - (4 - 3)')).toBe(9);
    expect(run('((((2))))')).toBe(2);
  });

  it('supports unary minus and plus', () => {
    expect(run('-3 + 5')).toBe(2);
    expect(run('2 * -3')).toBe(-6);
    expect(run('- -4')).toBe(4);
    expect(run('+4 - +1')).toBe(3);
    expect(run('-(1 + 2) * 2')).toBe(-6);
    expect(parseFormula('-a')).toEqual({ kind: 'unary', op: '-', operand: { kind: 'ref', code: 'a' } });
  });

  it('reads every number form', () => {
    expect(run('12')).toBe(12);
    expect(run('3.5')).toBe(3.5);
    expect(run('.5')).toBe(0.5);
    expect(run('1e3')).toBe(1000);
    expect(run('2.5e-1')).toBe(0.25);
  });

  it('reads codes with dots, dashes, underscores and digits', () => {
    expect(formulaReferences(parseFormula('checkout.orders / web.sessions * 100'))).toEqual([
      'checkout.orders',
      'web.sessions',
    ]);
    expect(formulaReferences(parseFormula('(a.b + c_d.e-f) / 2'))).toEqual(['a.b', 'c_d.e-f']);
    expect(formulaReferences(parseFormula('web.page-views + app2.v1_0'))).toEqual([
      'web.page-views',
      'app2.v1_0',
    ]);
    expect(run('(a.b + c_d.e-f) / 2', { 'a.b': 3, 'c_d.e-f': 5 })).toBe(4);
  });

  it('treats a dash between code characters as part of the code, and a spaced dash as minus', () => {
    expect(parseFormula('a-b')).toEqual({ kind: 'ref', code: 'a-b' });
    expect(parseFormula('a.b-2')).toEqual({ kind: 'ref', code: 'a.b-2' });
    expect(run('a - b', { a: 5, b: 2 })).toBe(3);
    expect(run('a -b', { a: 5, b: 2 })).toBe(3);
    expect(run('a-(b)', { a: 5, b: 2 })).toBe(3);
    expect(run('(a)-b', { a: 5, b: 2 })).toBe(3);
    expect(run('7-2')).toBe(5);
    expect(run('a-b - a', { 'a-b': 10, a: 4 })).toBe(6);
  });

  it('ignores whitespace of any kind', () => {
    expect(run('\t1\n+\r\n2 ')).toBe(3);
  });

  it('reports an empty formula', () => {
    for (const source of ['', '   \n']) {
      const error = failure(source);
      expect(error.message).toMatch(/^empty formula/);
      expect(error.position).toBe(0);
    }
  });

  it('reports a missing operand with what was expected and what arrived', () => {
    const error = failure('orders * * 2');
    expect(error.message).toBe('expected a KPI code, a number or "(" at position 9, but got "*"');
    expect(error.position).toBe(9);

    const atEnd = failure('a +');
    expect(atEnd.message).toBe('expected a KPI code, a number or "(" at position 3, but got end of formula');
    expect(atEnd.position).toBe(3);

    const empty = failure('()');
    expect(empty.message).toBe('expected a KPI code, a number or "(" at position 1, but got ")"');
    expect(empty.position).toBe(1);
  });

  it('reports an unclosed parenthesis at its opening position', () => {
    const error = failure('(a + (b * 2)');
    expect(error.message).toMatch(/^unclosed "\(" opened at position 0/);
    expect(error.position).toBe(0);

    const inner = failure('a * (b + (c)');
    expect(inner.message).toMatch(/^unclosed "\(" opened at position 4/);
    expect(inner.position).toBe(4);
  });

  it('reports an unexpected closing parenthesis', () => {
    const error = failure('a + b) * 2');
    expect(error.message).toMatch(/^unexpected "\)" at position 5/);
    expect(error.position).toBe(5);
  });

  it('reports a missing operator, at top level and inside parentheses', () => {
    const top = failure('a b');
    expect(top.message).toBe('expected an operator or end of formula at position 2, but got "b"');
    expect(top.position).toBe(2);

    const inner = failure('(a 2)');
    expect(inner.message).toBe('expected an operator or ")" at position 3, but got "2"');
    expect(inner.position).toBe(3);
  });

  it('reports characters that belong nowhere', () => {
    const error = failure('a + #b');
    expect(error.message).toBe('expected a KPI code, a number or "(" at position 4, but got "#"');
    expect(error.position).toBe(4);

    const after = failure('a % b');
    expect(after.message).toBe('expected an operator or end of formula at position 2, but got "%"');
    expect(after.position).toBe(2);
  });

  it('reports malformed KPI codes', () => {
    for (const [source, position, text] of [
      ['1 + Web.sessions', 4, 'Web.sessions'],
      ['a..b', 0, 'a..b'],
      ['2 * orders.', 4, 'orders.'],
    ] as const) {
      const error = failure(source);
      expect(error.message).toBe(
        `expected a KPI code (lowercase segments separated by ".") at position ${position}, but got "${text}"`,
      );
      expect(error.position).toBe(position);
    }
  });

  it('reports malformed and non-finite numbers', () => {
    const malformed = failure('1 + 1.2.3');
    expect(malformed.message).toBe('expected a number at position 4, but got "1.2.3"');
    expect(malformed.position).toBe(4);

    expect(failure('2e').message).toBe('expected a number at position 0, but got "2e"');
    expect(failure('3 * 12abc').position).toBe(4);

    const huge = failure('1e999');
    expect(huge.message).toBe('expected a finite number at position 0, but got "1e999"');
    expect(huge.position).toBe(0);
  });

  it('accepts 64 levels of nesting and rejects 65', () => {
    expect(run('('.repeat(64) + '1' + ')'.repeat(64))).toBe(1);
    const parens = failure('('.repeat(65) + '1' + ')'.repeat(65));
    expect(parens.message).toMatch(/^formula nests too deeply at position 64: expected at most 64 levels/);
    expect(parens.position).toBe(64);

    expect(run('-'.repeat(64) + '1')).toBe(1);
    const unary = failure('- '.repeat(65) + '1');
    expect(unary.message).toMatch(/too deeply at position 128/);
    expect(unary.position).toBe(128);

    const mixed = failure('-('.repeat(33) + '1' + ')'.repeat(33));
    expect(mixed.position).toBe(64);
  });

  it('accepts 2,000 characters and rejects 2,001', () => {
    const longest = '1' + ' + 1'.repeat(499) + ' '.repeat(3);
    expect(longest).toHaveLength(2000);
    expect(run(longest)).toBe(500);

    const error = failure(longest + ' ');
    expect(error.message).toBe('formula is too long: expected at most 2000 characters, but got 2001');
    expect(error.position).toBe(2000);
  });

  it('produces errors that are real Errors with a name', () => {
    const error = failure(')');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('FormulaError');
  });
});

describe('formulaReferences', () => {
  it('lists distinct codes in first-appearance order', () => {
    const node = parseFormula('(b.x + a) / b.x - c * a + 2');
    expect(formulaReferences(node)).toEqual(['b.x', 'a', 'c']);
  });

  it('is empty for a constant formula', () => {
    expect(formulaReferences(parseFormula('-(1 + 2) * 3'))).toEqual([]);
  });
});

describe('evaluateFormula', () => {
  it('looks KPI values up by code', () => {
    expect(run('checkout.orders / web.sessions * 100', { 'checkout.orders': 25, 'web.sessions': 200 })).toBe(
      12.5,
    );
  });

  it('returns null when any referenced value is null or undefined', () => {
    expect(run('a + b', { a: 1, b: null })).toBeNull();
    expect(run('a + b', { a: 1 })).toBeNull();
    expect(run('0 * missing', {})).toBeNull();
    expect(run('-(x)', { x: null })).toBeNull();
  });

  it('returns null on division by zero instead of Infinity or NaN', () => {
    expect(run('1 / 0')).toBeNull();
    expect(run('0 / 0')).toBeNull();
    expect(run('a / (b - b)', { a: 3, b: 7 })).toBeNull();
    expect(run('1 + a / b', { a: 1, b: 0 })).toBeNull();
  });

  it('returns null for non-finite inputs and results', () => {
    expect(run('a + 1', { a: Number.NaN })).toBeNull();
    expect(run('a', { a: Number.POSITIVE_INFINITY })).toBeNull();
    expect(run('1e308 * 10')).toBeNull();
    expect(run('1e308 * 10 - 1e308 * 10')).toBeNull();
  });

  it('never returns negative zero', () => {
    expect(Object.is(run('0 * -1'), 0)).toBe(true);
    expect(Object.is(run('-0'), 0)).toBe(true);
  });
});

describe('findCycle', () => {
  it('finds a self-cycle', () => {
    expect(findCycle(new Map([['a', ['a']]]), 'a')).toEqual(['a', 'a']);
  });

  it('finds a 3-cycle starting from its start', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
    ]);
    expect(findCycle(graph, 'a')).toEqual(['a', 'b', 'c', 'a']);
    expect(findCycle(graph, 'b')).toEqual(['b', 'c', 'a', 'b']);
  });

  it('finds a cycle reachable from start that does not contain start', () => {
    const graph = new Map([
      ['root', ['leaf', 'x']],
      ['x', ['y']],
      ['y', ['z']],
      ['z', ['y']],
    ]);
    expect(findCycle(graph, 'root')).toEqual(['y', 'z', 'y']);
  });

  it('returns null for an acyclic DAG with shared descendants', () => {
    const graph = new Map([
      ['a', ['b', 'c']],
      ['b', ['d']],
      ['c', ['d']],
      ['d', []],
    ]);
    expect(findCycle(graph, 'a')).toBeNull();
    expect(findCycle(graph, 'unknown')).toBeNull();
  });

  it('ignores cycles not reachable from start', () => {
    const graph = new Map([
      ['a', ['b']],
      ['c', ['d']],
      ['d', ['c']],
    ]);
    expect(findCycle(graph, 'a')).toBeNull();
  });

  it('handles a long chain without overflowing the stack', () => {
    const size = 5000;
    const graph = new Map<string, string[]>();
    for (let i = 0; i < size; i++) graph.set(`k${i}`, [`k${i + 1}`]);
    expect(findCycle(graph, 'k0')).toBeNull();
    graph.set(`k${size}`, ['k0']);
    const cycle = findCycle(graph, 'k0');
    expect(cycle).toHaveLength(size + 2);
    expect(cycle?.[0]).toBe('k0');
    expect(cycle?.at(-1)).toBe('k0');
  });
});
