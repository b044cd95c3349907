import { describe, expect, it } from 'vitest';
import { perRequest } from './perRequest.ts';

describe('perRequest', () => {
  it('makes one value per context, on first use', () => {
    let made = 0;
    const valueOf = perRequest((context: { id: string }) => ({ id: context.id, n: ++made }));
    const first = { id: 'a' };
    const second = { id: 'b' };
    expect(made).toBe(0);
    const value = valueOf(first);
    expect(valueOf(first)).toBe(value);
    expect(valueOf(second)).toEqual({ id: 'b', n: 2 });
    expect(made).toBe(2);
  });
});
