import type { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { ReportRow } from './store.ts';
import {
  normaliseChanges,
  normaliseConfig,
  normaliseName,
  normaliseNewReport,
  normaliseSchedule,
  type CreateReportInput,
  type ReportConfigInput,
} from './validate.ts';

const kpis = new Map([
  ['checkout.revenue', ['country', 'channel']],
  ['checkout.orders', ['country']],
  ['web.sessions', []],
]);
const config: ReportConfigInput = {
  metrics: ['checkout.revenue', 'checkout.orders'],
  dimensions: ['country'],
  timeRange: {
    start: new Date('2026-11-01T00:00:00Z'),
    end: new Date('2026-11-02T00:00:00Z'),
    interval: '1h',
  },
};
const input: CreateReportInput = { name: 'Revenue by country', type: 'ADHOC', config };

/** The BAD_USER_INPUT error fn throws: its field and message. */
function refusal(fn: () => unknown): { field: unknown; message: string } {
  try {
    fn();
  } catch (error) {
    const { extensions, message } = error as GraphQLError;
    expect(extensions['code']).toBe('BAD_USER_INPUT');
    return { field: extensions['field'], message };
  }
  throw new Error('expected a BAD_USER_INPUT error');
}
const withConfig = (changes: Partial<ReportConfigInput>) => () =>
  normaliseConfig({ ...config, ...changes }, kpis);
const withRange = (range: Partial<ReportConfigInput['timeRange']>) =>
  withConfig({ timeRange: { ...config.timeRange, ...range } });

describe('report definition validation', () => {
  it('normalises a valid report with the defaults of the contract', () => {
    expect(normaliseNewReport({ ...input, name: '  Revenue by country ' }, kpis)).toEqual({
      name: 'Revenue by country',
      type: 'ADHOC',
      config: {
        metrics: ['checkout.revenue', 'checkout.orders'],
        dimensions: ['country'],
        filters: [],
        timeRange: { start: '2026-11-01T00:00:00.000Z', end: '2026-11-02T00:00:00.000Z', interval: '1h' },
      },
      schedule: null,
      format: 'CSV',
    });
  });

  it('wants a name of 1 to 200 characters', () => {
    expect(refusal(() => normaliseName('   '))).toEqual({
      field: 'name',
      message: 'name: expected 1 to 200 characters, but got 0',
    });
    expect(refusal(() => normaliseName('x'.repeat(201))).field).toBe('name');
    expect(normaliseName('x'.repeat(200))).toHaveLength(200);
  });

  it('wants 1 to 50 distinct KPI codes of the tenant, naming the unknown ones', () => {
    expect(refusal(withConfig({ metrics: [] })).message).toBe(
      'config.metrics: expected 1 to 50 KPI codes, but got 0',
    );
    expect(refusal(withConfig({ metrics: Array.from({ length: 51 }, (_, i) => `k.${i}`) })).field).toBe(
      'config.metrics',
    );
    expect(refusal(withConfig({ metrics: ['checkout.orders', 'checkout.orders'] })).message).toMatch(
      /expected distinct KPI codes/,
    );
    expect(refusal(withConfig({ metrics: ['checkout.orders', 'nope.a', 'nope.b'], dimensions: [] }))).toEqual(
      {
        field: 'config.metrics',
        message: 'config.metrics: unknown KPI "nope.a", "nope.b": define it first (defineKpi)',
      },
    );
  });

  it('wants dimensions that every chosen KPI has', () => {
    expect(refusal(withConfig({ dimensions: ['channel'] }))).toEqual({
      field: 'config.dimensions',
      message:
        'config.dimensions: "channel" is not a dimension of KPI "checkout.orders" (its dimensions: country)',
    });
    expect(refusal(withConfig({ metrics: ['web.sessions'], dimensions: ['country'] })).message).toMatch(
      /"web\.sessions" \(its dimensions: none\)/,
    );
    expect(refusal(withConfig({ dimensions: ['country', 'country'] })).message).toMatch(/distinct names/);
    expect(normaliseConfig({ ...config, dimensions: null }, kpis).dimensions).toEqual([]);
  });

  it('wants filters on a shared dimension, with eq and a scalar value', () => {
    const filter = { field: 'country', operator: 'eq', value: 'DE' };
    expect(normaliseConfig({ ...config, filters: [filter] }, kpis).filters).toEqual([filter]);
    for (const value of [42, true]) expect(withConfig({ filters: [{ ...filter, value }] })).not.toThrow();
    expect(refusal(withConfig({ filters: [{ ...filter, field: 'channel' }] })).field).toBe(
      'config.filters[0].field',
    );
    expect(refusal(withConfig({ filters: [filter, { ...filter, operator: 'gt' }] }))).toEqual({
      field: 'config.filters[1].operator',
      message: 'config.filters[1].operator: only "eq" is supported for now, but got "gt"',
    });
    for (const value of [null, undefined, { a: 1 }, ['DE'], Number.NaN]) {
      expect(refusal(withConfig({ filters: [{ ...filter, value }] })).field).toBe('config.filters[0].value');
    }
  });

  it('wants a time range with start before end, at most 366 days and a known interval', () => {
    expect(refusal(withRange({ end: new Date('2026-10-31T00:00:00Z') }))).toEqual({
      field: 'config.timeRange',
      message:
        'config.timeRange: expected start before end, but got 2026-11-01T00:00:00.000Z to 2026-10-31T00:00:00.000Z',
    });
    expect(refusal(withRange({ end: config.timeRange.start })).field).toBe('config.timeRange');
    expect(refusal(withRange({ end: new Date('2027-11-03T00:00:00Z') })).message).toMatch(
      /at most 366 days, but got 367\.0 days/,
    );
    expect(withRange({ end: new Date('2027-11-02T00:00:00Z'), interval: '1m' })).not.toThrow();
    for (const interval of ['1s', '2d', '1 h', 'hourly', '0m']) {
      expect(refusal(withRange({ interval })).field).toBe('config.timeRange.interval');
    }
    for (const interval of ['1m', '5m', '15m', '1h', '1d', null, undefined])
      expect(withRange({ interval })).not.toThrow();
  });

  it('wants a five-field cron expression and an IANA time zone, UTC by default', () => {
    expect(normaliseSchedule({ cron: ' 0  6 * * 1-5 ' })).toEqual({ cron: '0 6 * * 1-5', timezone: 'UTC' });
    expect(normaliseSchedule({ cron: '@daily', timezone: 'Europe/Berlin' })).toEqual({
      cron: '@daily',
      timezone: 'Europe/Berlin',
    });
    expect(normaliseSchedule({ cron: '*/15 * * * THU', timezone: null }).timezone).toBe('UTC');
    for (const cron of [
      'not a cron',
      '61 * * * *',
      '* * * *',
      '* * * * * *',
      '@secondly',
      '@reboot',
      '0 0 30 2 *',
      'H * * * *',
    ]) {
      expect(refusal(() => normaliseSchedule({ cron })).field, cron).toBe('schedule.cron');
    }
    for (const timezone of ['Mars/Olympus', '+01:00', 'Europe Berlin']) {
      expect(refusal(() => normaliseSchedule({ cron: '0 6 * * *', timezone })).field, timezone).toBe(
        'schedule.timezone',
      );
    }
  });

  it('wants a schedule for a SCHEDULED report, also when one would be removed', () => {
    expect(refusal(() => normaliseNewReport({ ...input, type: 'SCHEDULED' }, kpis)).field).toBe('schedule');
    const scheduled = normaliseNewReport(
      { ...input, type: 'SCHEDULED', schedule: { cron: '@hourly' } },
      kpis,
    );
    const existing: ReportRow = {
      ...scheduled,
      id: '00000000-0000-4000-8000-000000000000',
      createdAt: new Date(),
      updatedAt: new Date(),
    };
    expect(refusal(() => normaliseChanges({ schedule: null }, existing, kpis)).field).toBe('schedule');
    expect(normaliseChanges({ schedule: null }, { ...existing, type: 'ADHOC' }, kpis)).toEqual({
      schedule: null,
    });
  });

  it('checks only what an update changes', () => {
    const existing: ReportRow = {
      ...normaliseNewReport(input, kpis),
      id: '00000000-0000-4000-8000-000000000000',
      createdAt: new Date(),
      updatedAt: new Date(),
    };
    // The stored config names a KPI that is gone: a rename still goes through.
    expect(normaliseChanges({ name: 'Renamed', format: 'JSON' }, existing, new Map())).toEqual({
      name: 'Renamed',
      format: 'JSON',
    });
    expect(refusal(() => normaliseChanges({ config }, existing, new Map())).field).toBe('config.metrics');
    expect(normaliseChanges({}, existing, kpis)).toEqual({});
  });
});
