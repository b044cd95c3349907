import { describe, expect, it } from 'vitest';
import { addToSketch, mergeSketches, RELATIVE_ACCURACY, sketchQuantile, type Sketch } from './sketch.ts';

function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

describe('quantile sketch', () => {
  it('estimates P50, P95 and P99 within its relative accuracy', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const values = Array.from({ length: 20_000 }, () => Math.exp(random() * 8)); // 1 .. ~3000, skewed
    const sketch: Sketch = {};
    for (const v of values) addToSketch(sketch, v);
    for (const q of [0.5, 0.95, 0.99]) {
      const estimate = sketchQuantile(sketch, q)!;
      const exact = exactQuantile(values, q);
      expect(Math.abs(estimate - exact) / exact).toBeLessThanOrEqual(RELATIVE_ACCURACY);
    }
  });

  it('merges by adding counts, giving what one sketch of all values gives', () => {
    const a: Sketch = {};
    const b: Sketch = {};
    const all: Sketch = {};
    for (let i = 1; i <= 1000; i++) {
      addToSketch(i % 2 ? a : b, i);
      addToSketch(all, i);
    }
    expect(mergeSketches([a, b, null])).toEqual(all);
    expect(sketchQuantile(mergeSketches([a, b]), 0.95)).toBe(sketchQuantile(all, 0.95));
  });

  it('handles zero, negative values and an empty sketch', () => {
    const sketch: Sketch = {};
    for (const v of [-10, -5, 0, 0, 5, 10]) addToSketch(sketch, v);
    expect(sketchQuantile(sketch, 0)).toBeCloseTo(-10, 0);
    expect(sketchQuantile(sketch, 0.5)).toBe(0);
    expect(sketchQuantile(sketch, 1)).toBeCloseTo(10, 0);
    expect(sketchQuantile({}, 0.5)).toBeNull();
  });
});
