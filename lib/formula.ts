/**
 * KPI formulas: a tiny arithmetic language over KPI codes, e.g. `checkout.orders / web.sessions * 100`.
 *
 * Grammar (standard precedence, left associative):
 *
 *   expression := term (("+" | "-") term)*
 *   term       := unary (("*" | "/") unary)*
 *   unary      := ("+" | "-") unary | primary
 *   primary    := NUMBER | CODE | "(" expression ")"
 *
 * - NUMBER: `12`, `3.5`, `.5`, `1e3`, `2.5e-3` (`1.` and `1e` are rejected).
 * - CODE: a KPI code, lowercase segments separated by dots (`web.page-views`, `c_d.e-f`).
 * - `-` is ambiguous because KPI codes may contain dashes. It belongs to a code only when it sits
 *   directly between two code characters with no whitespace, so `a-b` is the code "a-b" and
 *   `a - b` is a subtraction. Always put spaces around a binary minus whose left operand is a code.
 *   A minus that touches something else is an operator: `a -b`, `a-(b)`, `(a)-b` and `2-1` subtract.
 */

/** The syntax every KPI code must follow: lowercase segments separated by dots. */
export const KPI_CODE = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;
/** A numeric literal, matched sticky at the current offset. */
const NUMBER = /(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?/y;
/** The longest accepted formula, in characters. */
const MAX_LENGTH = 2000;
/** The deepest accepted nesting of parentheses and unary operators. */
const MAX_DEPTH = 64;
/** What the parser wants wherever an operand must start. */
const OPERAND = 'a KPI code, a number or "("';

/** A formula that cannot be parsed; `position` is the 0-based character offset of the problem. */
export class FormulaError extends Error {
  readonly position: number;

  constructor(message: string, position: number) {
    super(message);
    this.name = 'FormulaError';
    this.position = position;
  }
}

/** The abstract syntax tree of a parsed formula. */
export type FormulaNode =
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'ref'; readonly code: string }
  | { readonly kind: 'unary'; readonly op: '+' | '-'; readonly operand: FormulaNode }
  | {
      readonly kind: 'binary';
      readonly op: '+' | '-' | '*' | '/';
      readonly left: FormulaNode;
      readonly right: FormulaNode;
    };

/** One lexical token; `problem` marks a malformed number or code, reported only if the parser reaches it. */
interface Token {
  readonly type: 'number' | 'code' | 'op' | '(' | ')' | 'invalid' | 'end';
  readonly text: string;
  readonly position: number;
  readonly value?: number;
  readonly problem?: string;
}

/** Whether `ch` may appear in a code token (uppercase included so it can be reported as a bad code). */
function isCodeChar(ch: string | undefined): boolean {
  return ch !== undefined && /[A-Za-z0-9_.-]/.test(ch);
}

/** Splits a formula into tokens; never throws, bad input becomes `invalid` tokens or tokens with a problem. */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i] ?? '';
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ type: ch, text: ch, position: i });
      i++;
    } else if (ch === '+' || ch === '-' || ch === '*' || ch === '/') {
      tokens.push({ type: 'op', text: ch, position: i });
      i++;
    } else if (/[A-Za-z]/.test(ch)) {
      const start = i;
      i++;
      for (;;) {
        const next = source[i];
        if (next === '-' ? isCodeChar(source[i + 1]) : next !== undefined && /[A-Za-z0-9_.]/.test(next)) i++;
        else break;
      }
      const text = source.slice(start, i);
      const problem = KPI_CODE.test(text)
        ? undefined
        : `expected a KPI code (lowercase segments separated by ".") at position ${start}, but got "${text}"`;
      tokens.push(
        problem === undefined
          ? { type: 'code', text, position: start }
          : { type: 'code', text, position: start, problem },
      );
    } else if (/[0-9.]/.test(ch)) {
      const start = i;
      NUMBER.lastIndex = start;
      const match = NUMBER.exec(source);
      if (match === null) {
        // A lone "." not followed by a digit.
        tokens.push({ type: 'invalid', text: ch, position: start });
        i++;
        continue;
      }
      i = start + match[0].length;
      while (i < source.length && /[A-Za-z0-9_.]/.test(source[i] ?? '')) i++;
      const text = source.slice(start, i);
      const value = Number(text);
      const problem =
        text !== match[0]
          ? `expected a number at position ${start}, but got "${text}"`
          : Number.isFinite(value)
            ? undefined
            : `expected a finite number at position ${start}, but got "${text}"`;
      tokens.push(
        problem === undefined
          ? { type: 'number', text, position: start, value }
          : { type: 'number', text, position: start, problem },
      );
    } else {
      const text = String.fromCodePoint(source.codePointAt(i) ?? 0);
      tokens.push({ type: 'invalid', text, position: i });
      i += text.length;
    }
  }
  tokens.push({ type: 'end', text: '', position: source.length });
  return tokens;
}

/** How a token is named in error messages. */
function describe(token: Token): string {
  return token.type === 'end' ? 'end of formula' : JSON.stringify(token.text);
}

/** Parses a KPI formula into its syntax tree, throwing a FormulaError that pinpoints the first problem. */
export function parseFormula(source: string): FormulaNode {
  if (source.length > MAX_LENGTH) {
    throw new FormulaError(
      `formula is too long: expected at most ${MAX_LENGTH} characters, but got ${source.length}`,
      MAX_LENGTH,
    );
  }
  const tokens = tokenize(source);
  let index = 0;
  let depth = 0;

  const peek = (): Token => tokens[index] ?? tokens[tokens.length - 1]!;

  const enter = (token: Token): void => {
    depth++;
    if (depth > MAX_DEPTH) {
      throw new FormulaError(
        `formula nests too deeply at position ${token.position}: expected at most ${MAX_DEPTH} levels of ` +
          `parentheses and unary operators, but ${describe(token)} opens level ${depth}`,
        token.position,
      );
    }
  };

  const expression = (): FormulaNode => {
    let left = term();
    for (
      let token = peek();
      token.type === 'op' && (token.text === '+' || token.text === '-');
      token = peek()
    ) {
      index++;
      left = { kind: 'binary', op: token.text, left, right: term() };
    }
    return left;
  };

  const term = (): FormulaNode => {
    let left = unary();
    for (
      let token = peek();
      token.type === 'op' && (token.text === '*' || token.text === '/');
      token = peek()
    ) {
      index++;
      left = { kind: 'binary', op: token.text, left, right: unary() };
    }
    return left;
  };

  const unary = (): FormulaNode => {
    const token = peek();
    if (token.type === 'op' && (token.text === '+' || token.text === '-')) {
      index++;
      enter(token);
      const operand = unary();
      depth--;
      return { kind: 'unary', op: token.text, operand };
    }
    return primary();
  };

  const primary = (): FormulaNode => {
    const token = peek();
    if (token.problem !== undefined) throw new FormulaError(token.problem, token.position);
    if (token.type === 'number' && token.value !== undefined) {
      index++;
      return { kind: 'number', value: token.value };
    }
    if (token.type === 'code') {
      index++;
      return { kind: 'ref', code: token.text };
    }
    if (token.type === '(') {
      index++;
      enter(token);
      const inner = expression();
      depth--;
      const close = peek();
      if (close.type === ')') {
        index++;
        return inner;
      }
      if (close.type === 'end') {
        throw new FormulaError(
          `unclosed "(" opened at position ${token.position}: expected ")" but got end of formula`,
          token.position,
        );
      }
      throw new FormulaError(
        `expected an operator or ")" at position ${close.position}, but got ${describe(close)}`,
        close.position,
      );
    }
    if (token.type === 'end' && index === 0) {
      throw new FormulaError(`empty formula: expected ${OPERAND}`, 0);
    }
    throw new FormulaError(
      `expected ${OPERAND} at position ${token.position}, but got ${describe(token)}`,
      token.position,
    );
  };

  const root = expression();
  const rest = peek();
  if (rest.type === ')') {
    throw new FormulaError(`unexpected ")" at position ${rest.position}: no "(" is open`, rest.position);
  }
  if (rest.type !== 'end') {
    throw new FormulaError(
      `expected an operator or end of formula at position ${rest.position}, but got ${describe(rest)}`,
      rest.position,
    );
  }
  return root;
}

/** The distinct KPI codes a formula references, in order of first appearance. */
export function formulaReferences(node: FormulaNode): string[] {
  const codes = new Set<string>();
  const visit = (current: FormulaNode): void => {
    switch (current.kind) {
      case 'number':
        return;
      case 'ref':
        codes.add(current.code);
        return;
      case 'unary':
        visit(current.operand);
        return;
      case 'binary':
        visit(current.left);
        visit(current.right);
        return;
    }
  };
  visit(node);
  return [...codes];
}

/** Evaluates a formula; null when a value is missing or non-finite, on division by zero, or on a non-finite result. */
export function evaluateFormula(
  node: FormulaNode,
  values: (code: string) => number | null | undefined,
): number | null {
  const evaluate = (current: FormulaNode): number | null => {
    let result: number;
    switch (current.kind) {
      case 'number':
        result = current.value;
        break;
      case 'ref': {
        const value = values(current.code);
        if (value === null || value === undefined) return null;
        result = value;
        break;
      }
      case 'unary': {
        const operand = evaluate(current.operand);
        if (operand === null) return null;
        result = current.op === '-' ? -operand : operand;
        break;
      }
      case 'binary': {
        const left = evaluate(current.left);
        if (left === null) return null;
        const right = evaluate(current.right);
        if (right === null) return null;
        if (current.op === '/') {
          if (right === 0) return null;
          result = left / right;
        } else if (current.op === '*') result = left * right;
        else if (current.op === '+') result = left + right;
        else result = left - right;
        break;
      }
    }
    return Number.isFinite(result) ? result : null;
  };
  const result = evaluate(node);
  // Normalise -0 so callers never display "-0".
  return result === 0 ? 0 : result;
}

/** A dependency cycle reachable from `start` in a code -> referenced codes graph, e.g. `['a', 'b', 'a']`, or null. */
export function findCycle(graph: Map<string, string[]>, start: string): string[] | null {
  // Iterative DFS: 'active' codes are on the current path, 'done' codes are fully explored and cycle-free.
  const state = new Map<string, 'active' | 'done'>();
  const path: { code: string; next: number }[] = [];
  const push = (code: string): void => {
    state.set(code, 'active');
    path.push({ code, next: 0 });
  };
  push(start);
  while (path.length > 0) {
    const frame = path[path.length - 1]!;
    const edges = graph.get(frame.code) ?? [];
    if (frame.next >= edges.length) {
      state.set(frame.code, 'done');
      path.pop();
      continue;
    }
    const target = edges[frame.next++]!;
    const seen = state.get(target);
    if (seen === 'active') {
      const from = path.findIndex((entry) => entry.code === target);
      return [...path.slice(from).map((entry) => entry.code), target];
    }
    if (seen === undefined) push(target);
  }
  return null;
}
