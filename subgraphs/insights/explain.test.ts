import { describe, expect, it } from 'vitest';
import type { Baseline } from './baseline.ts';
import { judgeAnomaly, judgeTrend } from './detect.ts';
import { anomalyText, closedAnomalyText, formatValue, thresholdText, trendText } from './explain.ts';

const latency = { name: 'Checkout latency', unit: 'ms' };
const weekly: Baseline = {
  regime: 'weekly',
  periods: 4,
  scale: 'log',
  offset: 5,
  expected: 100,
  center: Math.log(105),
  spread: 0.1,
};
// Monday 2026-11-23, the 5 minutes to 14:08.
const window = { from: Date.parse('2026-11-23T14:03:00Z'), to: Date.parse('2026-11-23T14:08:00Z') };

describe('the words of insights', () => {
  it('says how far, against what, for which time of week, and where that comes from', () => {
    const text = anomalyText(latency, judgeAnomaly(weekly, 910), weekly, window);
    expect(text.title).toBe('Checkout latency is 9.1x its usual level for Monday 14:05');
    expect(text.detail).toMatch(
      /^910 ms over the 5 minutes to 14:08 UTC, against 100 ms expected \(usual range \d+ ms to \d+ ms\), learnt from the same time on the 4 previous Mondays\.$/,
    );
    expect(text.summary).toBe('Checkout latency was up to 9.1x its usual level for Monday 14:05');
    expect(anomalyText(latency, judgeAnomaly(weekly, 12), weekly, window).title).toBe(
      'Checkout latency is down to 12% of its usual level for Monday 14:05',
    );
    const closed = closedAnomalyText(
      latency,
      {
        openedAt: window.to,
        peak: { observed: 910, expected: 100, summary: text.summary },
        recoveredAt: window.to + 20 * 60_000,
      },
      window.to + 25 * 60_000,
    );
    expect(closed).toEqual({
      title: 'Checkout latency was up to 9.1x its usual level for Monday 14:05; back to normal',
      detail:
        'From 14:08 to 14:33 UTC (25 min); at its peak 910 ms against 100 ms expected. ' +
        'Back within its usual range since 14:28 UTC.',
    });
  });

  it('words trends and thresholds, and formats values with their units', () => {
    expect(trendText({ name: 'Revenue', unit: 'EUR' }, judgeTrend(13_200, 10_000, 'volume')!)).toEqual({
      title: 'Revenue is up 32% week over week',
      detail:
        '13,200 EUR over the last 24 hours, against 10,000 EUR over the same 24 hours a week earlier (up 32%).',
    });
    expect(
      thresholdText(latency, { condition: 'ABOVE', value: 500 }, 742.4, { openedAt: window.to, peak: 742.4 })
        .title,
    ).toBe('Checkout latency is above 500 ms: 742 ms');
    expect(formatValue(3.14159, '%')).toBe('3.14%');
    expect(formatValue(0.04512, null)).toBe('0.0451');
    expect(formatValue(1234567.8, 'EUR')).toBe('1,234,568 EUR');
    expect(formatValue(null, 'ms')).toBe('no value');
  });
});
