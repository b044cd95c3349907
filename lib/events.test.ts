import { describe, expect, it } from 'vitest';
import { eventIdOf, validateEvents } from './events.ts';

const good = {
  type: 'BUSINESS_EVENT',
  name: 'checkout.completed',
  source: 'web',
  timestamp: '2026-11-23T10:00:00Z',
};

describe('event validation', () => {
  it('passes good events and reports each bad one with its index and what was expected', () => {
    const now = Date.parse('2026-11-23T12:00:00Z');
    const { valid, rejected } = validateEvents(
      [
        good,
        { ...good, type: 'NOPE' },
        { ...good, timestamp: '2026-11-23 10:00' },
        { ...good, timestamp: '2026-11-24T10:00:00Z' },
        { ...good, attributes: 'amount=5' },
        { ...good, id: 'has space' },
        { ...good, attributes: { amount: 5 }, metadata: { sessionId: 's1' } },
      ],
      now,
    );
    expect(valid.map((v) => v.index)).toEqual([0, 6]);
    expect(valid[1]!.event).toMatchObject({ attributes: { amount: 5 }, metadata: { sessionId: 's1' } });
    expect(rejected).toEqual([
      { index: 1, message: expect.stringMatching(/^type: expected one of USER_ACTION/) as string },
      {
        index: 2,
        message: 'timestamp: expected an ISO-8601 date-time with zone, but got "2026-11-23 10:00"',
      },
      { index: 3, message: 'timestamp: 2026-11-24T10:00:00.000Z lies in the future' },
      { index: 4, message: 'attributes: expected a JSON object' },
      { index: 5, message: 'id: expected printable ASCII without spaces' },
    ]);
  });

  it('gives id-less events a stable content id, so a re-sent batch is recognised', () => {
    const [a, b, c] = validateEvents([good, { ...good }, { ...good, source: 'mobile' }], Date.now()).valid;
    expect(eventIdOf(a!.event)).toBe(eventIdOf(b!.event));
    expect(eventIdOf(a!.event)).not.toBe(eventIdOf(c!.event));
    expect(eventIdOf({ ...a!.event, id: 'client-1' })).toBe('client-1');
  });
});
