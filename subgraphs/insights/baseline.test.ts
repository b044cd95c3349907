import { describe, expect, it } from 'vitest';
import {
  anomalyMask,
  BUCKET_MS,
  LEARNING,
  learnBaseline,
  withoutAnomalies,
  type BucketSeries,
} from './baseline.ts';

const HOUR = 3_600_000;
const START = Date.parse('2026-11-02T00:00:00Z'); // a Monday

/** A series of `hours` of buckets from START, each valued by `value(time)`. */
function series(hours: number, value: (time: number, index: number) => number | null): BucketSeries {
  const count = (hours * HOUR) / BUCKET_MS;
  return { start: START, values: Array.from({ length: count }, (_, i) => value(START + i * BUCKET_MS, i)) };
}
const end = (s: BucketSeries) => s.start + s.values.length * BUCKET_MS;
const judgedAt = (s: BucketSeries) => end(s) + BUCKET_MS / 2;
// Deterministic noise in [-1, 1].
const wobble = (i: number) => Math.sin(i * 12.9898) * 0.999;

describe('learnBaseline', () => {
  it('judges nothing before 2 hours of history holding 12 values', () => {
    expect(
      learnBaseline(
        series(1.5, () => 100),
        START + 2 * HOUR,
        'count',
      ),
    ).toEqual({
      ready: false,
      historyMs: 1.5 * HOUR,
    });
    // A KPI defined long ago whose events began an hour ago: its history is the hour, not the zeros.
    const late = series(10, (t) => (t >= START + 9 * HOUR ? 100 : 0));
    expect(learnBaseline(late, judgedAt(late), 'count').ready).toBe(false);
    const steady = series(3, () => 100);
    const learnt = learnBaseline(steady, judgedAt(steady), 'count');
    expect(learnt).toMatchObject({ ready: true, baseline: { regime: 'recent', scale: 'count', offset: 1 } });
    expect(learnt.ready && learnt.baseline.expected).toBeCloseTo(100, 6);
  });

  it('follows a ramp while it knows no daily curve (a robust trend through the last 3 hours)', () => {
    const ramp = series(4, (t) => 100 * 1.5 ** ((t - START) / HOUR)); // x1.5 an hour
    const learnt = learnBaseline(ramp, judgedAt(ramp), 'count');
    const next = 100 * 1.5 ** ((judgedAt(ramp) - START) / HOUR);
    expect(learnt.ready && learnt.baseline.regime).toBe('recent');
    expect(learnt.ready && learnt.baseline.expected / next).toBeCloseTo(1, 1);
  });

  it('learns the time of day after 2 days, and the time of week after 2 weeks', () => {
    // Busy afternoons, quiet nights; weekends at half the level.
    const curve = (t: number, i: number) => {
      const hour = new Date(t).getUTCHours();
      const weekend = [0, 6].includes(new Date(t).getUTCDay()) ? 0.5 : 1;
      return Math.round((hour >= 12 && hour < 18 ? 1000 : 100) * weekend * (1 + 0.02 * wobble(i)));
    };
    // Day 3, 12:30: the level of the last 3 hours is a morning's, the slot an afternoon's.
    const daily = series(2 * 24 + 12.5, curve);
    const learnt = learnBaseline(daily, judgedAt(daily), 'count');
    expect(learnt).toMatchObject({ ready: true, baseline: { regime: 'daily', periods: 2 } });
    expect(learnt.ready && learnt.baseline.expected).toBeGreaterThan(900);

    // Third Saturday, 14:00: the weekly slot knows Saturdays are half the weekdays.
    const weekly = series(19 * 24 + 14, curve);
    const saturday = learnBaseline(weekly, judgedAt(weekly), 'count');
    expect(saturday).toMatchObject({ ready: true, baseline: { regime: 'weekly', periods: 2 } });
    expect(saturday.ready && saturday.baseline.expected).toBeGreaterThan(450);
    expect(saturday.ready && saturday.baseline.expected).toBeLessThan(550);
  });

  it('does not learn from past anomalies: their buckets are left out, for 6 hours at most', () => {
    const s = series(4, () => 100);
    const anomaly = { openedAt: START + 2 * HOUR, closedAt: START + 3 * HOUR };
    expect(anomalyMask(anomaly)).toEqual({
      from: START + 2 * HOUR - LEARNING.anomalyLeadMs,
      to: START + 3 * HOUR,
    });
    expect(anomalyMask({ openedAt: START, closedAt: null })).toEqual({
      from: START - LEARNING.anomalyLeadMs,
      to: START + LEARNING.anomalyForgetMs,
    });
    const masked = withoutAnomalies(s, [anomaly]).values;
    expect(masked.filter((v) => v === null)).toHaveLength((70 * 60_000) / BUCKET_MS);
    expect(masked[(2 * HOUR) / BUCKET_MS - 3]).toBe(100);
    expect(masked[(2 * HOUR) / BUCKET_MS - 2]).toBeNull();
    // A spike within the history leaves the level where it was.
    const spiked = series(4, (t) => (t >= START + 3 * HOUR ? 1000 : 100));
    const learnt = learnBaseline(
      withoutAnomalies(spiked, [{ openedAt: START + 3 * HOUR, closedAt: null }]),
      judgedAt(spiked),
      'count',
    );
    expect(learnt.ready && learnt.baseline.expected).toBeCloseTo(100, 0);
  });

  it('compares positive KPIs in log space and KPIs that go negative in plain units', () => {
    const latency = series(3, (_, i) => 100 + 5 * wobble(i));
    const log = learnBaseline(latency, judgedAt(latency), 'level');
    expect(log).toMatchObject({ ready: true, baseline: { scale: 'log' } });
    expect(log.ready && log.baseline.offset).toBeCloseTo(5, 0); // 5 % of the median
    const balance = series(3, (_, i) => 10 * wobble(i));
    expect(learnBaseline(balance, judgedAt(balance), 'volume')).toMatchObject({
      ready: true,
      baseline: { scale: 'linear', offset: 0 },
    });
    // Undefined buckets (no events for an average) are skipped, not zeros.
    const sparse = series(5, (_, i) => (i % 2 ? null : 100));
    const learnt = learnBaseline(sparse, judgedAt(sparse), 'level');
    expect(learnt.ready && learnt.baseline.expected).toBeCloseTo(100, 6);
  });
});
