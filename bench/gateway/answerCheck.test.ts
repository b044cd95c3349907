import { describe, expect, it } from 'vitest';
import { checkAnswer } from './answerCheck.ts';

describe('checkAnswer', () => {
  it('takes the same bytes, with or without a final newline', () => {
    expect(checkAnswer('{"a":1}', '{"a":1}')).toBe('same');
    expect(checkAnswer('{"a":1}\n', '{"a":1}')).toBe('same');
    expect(checkAnswer('{"a":1}\n\n', '{"a":1}')).toBe('different');
  });

  it('takes the same JSON in another key order only with sameJson', () => {
    expect(checkAnswer('{"b":2,"a":1}', '{"a":1,"b":2}')).toBe('different');
    expect(checkAnswer('{"b":2,"a":1}', '{"a":1,"b":2}', true)).toBe('reordered');
    expect(checkAnswer('{"a":2}', '{"a":1}', true)).toBe('different');
    expect(checkAnswer('not json', 'not json either', true)).toBe('different');
  });
});
