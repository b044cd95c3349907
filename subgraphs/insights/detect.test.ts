import { describe, expect, it } from 'vitest';
import type { Baseline } from './baseline.ts';
import {
  fullWindowValue,
  judgeAnomaly,
  judgedWindow,
  judgeThreshold,
  judgeTrend,
  stepEpisode,
  type OpenEpisode,
  type Signal,
} from './detect.ts';

const MINUTE = 60_000;
const countBaseline = (expected: number, regime: Baseline['regime'] = 'daily'): Baseline => ({
  regime,
  periods: 7,
  scale: 'count',
  offset: 1,
  expected,
  center: Math.log(expected + 1),
  spread: 0.05,
});
const logBaseline = (expected: number, spread = 0.1): Baseline => ({
  regime: 'weekly',
  periods: 4,
  scale: 'log',
  offset: 1,
  expected,
  center: Math.log(expected + 1),
  spread,
});

describe('judgeAnomaly', () => {
  it('sets the severity by the factor: 2x WARNING, 5x CRITICAL; the z-score must pass too', () => {
    expect(judgeAnomaly(countBaseline(100), 110)).toMatchObject({ state: 'normal', direction: 'up' });
    expect(judgeAnomaly(countBaseline(100), 170)).toMatchObject({ state: 'active', severity: 'INFO' });
    expect(judgeAnomaly(countBaseline(100), 300)).toMatchObject({ state: 'active', severity: 'WARNING' });
    expect(judgeAnomaly(countBaseline(100), 600)).toMatchObject({ state: 'active', severity: 'CRITICAL' });
    expect(judgeAnomaly(countBaseline(100), 20)).toMatchObject({ state: 'active', direction: 'down' });
    // Large for a count, but 1.3x is within what the factor test allows: elevated, no anomaly.
    expect(judgeAnomaly(countBaseline(10_000), 13_000).state).toBe('elevated');
    const { low, high } = judgeAnomaly(countBaseline(100), 100);
    expect(low).toBeGreaterThan(30);
    expect(low).toBeLessThan(100 / 1.5);
    expect(high).toBeGreaterThan(150);
    expect(high).toBeLessThan(200);
  });

  it('asks more of a new KPI (2x) and of small counts (a change of 10 events at least)', () => {
    expect(judgeAnomaly(countBaseline(100, 'recent'), 170).state).not.toBe('active');
    expect(judgeAnomaly(countBaseline(100, 'recent'), 250).state).toBe('active');
    expect(judgeAnomaly(countBaseline(0.6), 7).state).not.toBe('active');
    expect(judgeAnomaly(countBaseline(2), 20).state).toBe('active');
  });

  it('leaves a sum, level or formula of too few events normal, and judges others in log space', () => {
    expect(judgeAnomaly(logBaseline(100), 300, 100)).toMatchObject({ state: 'active', severity: 'WARNING' });
    expect(judgeAnomaly(logBaseline(100), 300, 19)).toMatchObject({ state: 'normal' });
    expect(judgeAnomaly(logBaseline(100, 0.3), 250).state).not.toBe('active');
  });
});

describe('the judged window', () => {
  it('is the 5 minutes ending with the current minute; additive values are scaled to the full window', () => {
    const now = Date.parse('2026-11-23T14:02:15Z');
    expect(judgedWindow(now)).toEqual({
      from: Date.parse('2026-11-23T13:58:00Z'),
      to: Date.parse('2026-11-23T14:03:00Z'),
      elapsedMs: 4.25 * MINUTE,
    });
    expect(fullWindowValue(85, 'count', 4.25 * MINUTE)).toBe(100);
    expect(fullWindowValue(85, 'level', 4.25 * MINUTE)).toBe(85);
  });
});

describe('judgeTrend and judgeThreshold', () => {
  it('opens a trend at 25 % week over week, if a count changed beyond Poisson noise', () => {
    expect(judgeTrend(1300, 1000, 'count')).toMatchObject({
      state: 'active',
      direction: 'up',
      severity: 'INFO',
    });
    expect(judgeTrend(400, 1000, 'count')).toMatchObject({
      state: 'active',
      direction: 'down',
      severity: 'WARNING',
    });
    expect(judgeTrend(1200, 1000, 'count')?.state).toBe('elevated');
    expect(judgeTrend(1100, 1000, 'count')?.state).toBe('normal');
    expect(judgeTrend(8, 4, 'count')?.state).toBe('elevated'); // +100 %, but 8 against 4 is chance
    expect(judgeTrend(8, 4, 'level')?.state).toBe('active');
    expect(judgeTrend(8, 0, 'count')).toBeNull();
    expect(judgeTrend(null, 4, 'count')).toBeNull();
  });

  it('holds a threshold while the value meets the condition', () => {
    const rule = {
      id: 'r',
      kpiCode: 'k',
      condition: 'ABOVE' as const,
      value: 50,
      severity: 'CRITICAL' as const,
    };
    expect(judgeThreshold(rule, 51)).toEqual({
      state: 'active',
      direction: 'up',
      severity: 'CRITICAL',
      observed: 51,
    });
    expect(judgeThreshold(rule, 50).state).toBe('normal');
    expect(judgeThreshold(rule, null).state).toBe('normal');
    expect(judgeThreshold({ ...rule, condition: 'BELOW' }, 49).state).toBe('active');
  });
});

describe('stepEpisode: one episode, one insight', () => {
  const signal = (
    state: Signal['state'],
    severity: Signal['severity'] = 'WARNING',
    observed = 300,
  ): Signal => ({
    state,
    direction: 'up',
    severity,
    observed,
  });
  const open = (fields: Partial<OpenEpisode> = {}): OpenEpisode => ({
    direction: 'up',
    severity: 'WARNING',
    publishedAt: 0,
    publishedObserved: 300,
    recoveringSince: null,
    ...fields,
  });
  const none = { open: null, pendingSince: null };

  it('opens on a rise at once, and on a fall only once it has lasted a whole window', () => {
    expect(stepEpisode(none, signal('active'), 0, 'anomaly').action).toBe('open');
    expect(stepEpisode(none, signal('elevated'), 0, 'anomaly').action).toBe('none');
    const fall: Signal = { ...signal('active'), direction: 'down' };
    const first = stepEpisode(none, fall, 0, 'anomaly');
    expect(first).toEqual({ action: 'none', recoveringSince: null, pendingSince: 0 });
    const elevated = stepEpisode(
      { open: null, pendingSince: 0 },
      { ...fall, state: 'elevated' },
      2 * MINUTE,
      'anomaly',
    );
    expect(elevated.pendingSince).toBe(0);
    expect(stepEpisode({ open: null, pendingSince: 0 }, fall, 5 * MINUTE, 'anomaly').action).toBe('open');
    expect(
      stepEpisode({ open: null, pendingSince: 0 }, { ...fall, state: 'normal' }, 5 * MINUTE, 'anomaly'),
    ).toEqual({
      action: 'none',
      recoveringSince: null,
      pendingSince: null,
    });
  });

  it('updates when the severity rises, or every 5 minutes when the value moved; else keeps silent', () => {
    const state = { open: open(), pendingSince: null };
    expect(stepEpisode(state, signal('active', 'CRITICAL'), MINUTE, 'anomaly').action).toBe('update');
    expect(stepEpisode(state, signal('active', 'WARNING', 400), MINUTE, 'anomaly').action).toBe('hold');
    expect(stepEpisode(state, signal('active', 'WARNING', 400), 5 * MINUTE, 'anomaly').action).toBe('update');
    expect(stepEpisode(state, signal('active', 'WARNING', 310), 5 * MINUTE, 'anomaly').action).toBe('hold');
    expect(stepEpisode(state, signal('active', 'INFO'), MINUTE, 'anomaly').action).toBe('hold');
  });

  it('closes once the KPI has been back to normal for the recovery time, not while it is elevated', () => {
    const state = { open: open(), pendingSince: null };
    expect(stepEpisode(state, signal('elevated'), MINUTE, 'anomaly')).toMatchObject({
      action: 'hold',
      recoveringSince: null,
    });
    expect(stepEpisode(state, signal('normal'), MINUTE, 'anomaly')).toMatchObject({
      action: 'hold',
      recoveringSince: MINUTE,
    });
    const recovering = { open: open({ recoveringSince: MINUTE }), pendingSince: null };
    expect(stepEpisode(recovering, signal('normal'), 5 * MINUTE, 'anomaly').action).toBe('hold');
    expect(stepEpisode(recovering, signal('normal'), 6 * MINUTE, 'anomaly').action).toBe('close');
    // Deviating again before that: recovery starts over.
    expect(stepEpisode(recovering, signal('active'), 3 * MINUTE, 'anomaly')).toMatchObject({
      action: 'hold',
      recoveringSince: null,
    });
    expect(stepEpisode(recovering, signal('normal'), 2 * MINUTE, 'threshold').action).toBe('close');
  });

  it('closes and opens another when the KPI now deviates the other way', () => {
    const state = { open: open(), pendingSince: null };
    const fall: Signal = { ...signal('active'), direction: 'down' };
    expect(stepEpisode(state, fall, MINUTE, 'anomaly')).toMatchObject({
      action: 'hold',
      pendingSince: MINUTE,
    });
    expect(stepEpisode({ ...state, pendingSince: MINUTE }, fall, 6 * MINUTE, 'anomaly').action).toBe(
      'reopen',
    );
  });
});
