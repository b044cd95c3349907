import { describe, it, expect } from 'vitest';
import { validateEvents } from '../../lib/events.ts';
import { EVENT_KINDS, KPIS } from './catalog.ts';
import { createGenerator, rateAt } from './generator.ts';

const MONDAY_NOON = new Date('2026-11-23T12:00:00Z');
const sample = (seed: number, time = MONDAY_NOON, count = 20_000) =>
  createGenerator({ seed }).eventsAt(time, count, 60_000);
const named = (events: ReturnType<typeof sample>, name: string) => events.filter((e) => e.name === name);
const quantile = (values: number[], q: number) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length * q)]!;

describe('simulation generator', () => {
  it('gives the same events for the same seed, and others for another seed', () => {
    expect(sample(42, MONDAY_NOON, 500)).toEqual(sample(42, MONDAY_NOON, 500));
    expect(sample(43, MONDAY_NOON, 500)).not.toEqual(sample(42, MONDAY_NOON, 500));
  });

  it('generates only events the API accepts', () => {
    const events = sample(1);
    const { valid, rejected } = validateEvents(events, MONDAY_NOON.getTime());
    expect(rejected).toEqual([]);
    expect(valid).toHaveLength(events.length);
  });

  it('sends every event kind a KPI is computed from', () => {
    const names = new Set(sample(2).map((e) => e.name));
    for (const kpi of KPIS) if (kpi.eventName) expect(names).toContain(kpi.eventName);
    for (const kind of EVENT_KINDS) expect(names).toContain(kind.name);
  });

  it('keeps a shop funnel: page views far above sessions, sessions above orders, sign-ups rare', () => {
    const events = sample(3);
    const views = named(events, 'page.viewed').length;
    const sessions = named(events, 'session.started').length;
    const orders = named(events, 'checkout.completed').length;
    expect(views).toBeGreaterThan(3 * sessions);
    expect(sessions).toBeGreaterThan(10 * orders);
    expect(orders).toBeGreaterThan(0);
    expect(named(events, 'user.signed_up').length).toBeLessThan(events.length / 100);
  });

  it('prices orders in positive euros with at most two decimals', () => {
    const amounts = named(sample(4), 'checkout.completed').map((e) => e.attributes['amount'] as number);
    expect(amounts.length).toBeGreaterThan(20);
    for (const amount of amounts) {
      expect(amount).toBeGreaterThan(0);
      expect(String(amount)).toMatch(/^\d+(\.\d{1,2})?$/);
    }
  });

  it('draws shoppers from a bounded pool', () => {
    const events = createGenerator({ seed: 5, users: 200 }).eventsAt(MONDAY_NOON, 5_000);
    const users = new Set(named(events, 'page.viewed').map((e) => e.attributes['user_id']));
    expect(users.size).toBeLessThanOrEqual(200);
    expect(users.size).toBeGreaterThan(50);
  });

  it('is quieter at 03:00 than at 11:00, and --rate is the weekly average', () => {
    expect(rateAt(50, new Date('2026-11-23T03:00:00Z'))).toBeLessThan(
      rateAt(50, new Date('2026-11-23T11:00:00Z')) / 3,
    );
    const quarterHours = Array.from({ length: 7 * 96 }, (_, i) => MONDAY_NOON.getTime() + i * 900_000);
    const mean = quarterHours.reduce((sum, t) => sum + rateAt(50, new Date(t)), 0) / quarterHours.length;
    expect(mean).toBeCloseTo(50, 0);
  });

  it('shifts the mix with the week: API traffic dips at the weekend, the shop does not', () => {
    const share = (time: Date) => {
      const events = sample(6, time);
      return named(events, 'api.request').length / named(events, 'page.viewed').length;
    };
    expect(share(new Date('2026-11-22T12:00:00Z'))).toBeLessThan(share(MONDAY_NOON) / 1.5);
  });

  it('reports plausible API latencies', () => {
    const latencies = named(sample(7), 'api.request').map((e) => e.attributes['latency_ms'] as number);
    const p95 = quantile(latencies, 0.95);
    expect(p95).toBeGreaterThan(50);
    expect(p95).toBeLessThan(2000);
    expect(quantile(latencies, 0.5)).toBeLessThan(p95);
    expect(Math.min(...latencies)).toBeGreaterThan(0);
  });

  it('advances its clock at the seasonal rate', () => {
    const start = new Date('2026-11-23T10:00:00Z');
    const generator = createGenerator({ seed: 8, startTime: start });
    const events = generator.advance(new Date(start.getTime() + 600_000), 20);
    const expected = Array.from({ length: 10 }, (_, i) =>
      rateAt(20, new Date(start.getTime() + i * 60_000 + 30_000)),
    ).reduce((sum, r) => sum + r * 60, 0);
    expect(Math.abs(events.length - expected)).toBeLessThanOrEqual(1);
    expect(events.every((e) => e.timestamp > start.toISOString())).toBe(true);
    expect(generator.advance(new Date(start.getTime() + 600_000), 20)).toEqual([]);
  });
});
