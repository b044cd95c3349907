import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { decodeEventMessage, eventMessage } from './envelope.ts';
import { SubjectError, subjects } from './subjects.ts';

describe('subjects', () => {
  it('carry the tenant in every subject', () => {
    expect(subjects.event('acme', 'checkout.completed')).toBe('events.acme.checkout.completed');
    expect(subjects.kpi('acme', 'web.page-views')).toBe('kpi.acme.web.page-views');
    expect(subjects.metadataChanged('acme')).toBe('metadata.acme.changed');
    expect(subjects.reportJobs('acme')).toBe('reports.acme.jobs');
  });

  it('refuse tenants and names that would widen a subscription or break a subject', () => {
    for (const tenant of ['*', '>', 'a.b', 'a b', ''])
      expect(() => subjects.kpi(tenant, 'x'), tenant).toThrow(SubjectError);
    for (const name of ['a.*', 'a.>', 'a..b', 'a b', '.a'])
      expect(() => subjects.event('acme', name), name).toThrow(SubjectError);
  });
});

describe('event envelope', () => {
  it('round-trips an event with a tenant-scoped Nats-Msg-Id', () => {
    const event = {
      id: 'e1',
      type: 'USER_ACTION' as const,
      name: 'page.viewed',
      source: 'web',
      timestamp: new Date('2026-11-23T10:00:00Z'),
      attributes: { country: 'DE' },
      metadata: null,
      version: null,
    };
    const message = eventMessage('acme', 'e1', event);
    expect(message.subject).toBe('events.acme.page.viewed');
    expect(message.msgID).toBe('acme:e1');
    expect(message.body).toMatchObject({ event_id: 'e1', tenant: 'acme', source_service: 'metrics' });
    expect(decodeEventMessage(JSON.parse(JSON.stringify(message.body)))).toEqual({
      tenant: 'acme',
      eventId: 'e1',
      event,
    });
  });

  it('refuses what is not an envelope', () => {
    for (const junk of [
      null,
      'text',
      { tenant: 'acme' },
      { tenant: 'acme', event_id: 'x', payload: { name: 'a' } },
    ]) {
      expect(() => decodeEventMessage(junk)).toThrow(/not an event envelope/);
    }
  });
});

describe('cursors', () => {
  it('encode a stream sequence opaquely and decode only their own kind', () => {
    expect(decodeCursor(encodeCursor(42))).toBe(42);
    expect(encodeCursor(42)).not.toContain('42');
    expect(decodeCursor('garbage')).toBeUndefined();
    expect(decodeCursor(Buffer.from('kpi:-1').toString('base64url'))).toBeUndefined();
    expect(decodeCursor(encodeCursor(7, 'INSIGHTS'), 'INSIGHTS')).toBe(7);
    expect(decodeCursor(encodeCursor(7, 'INSIGHTS'))).toBeUndefined();
  });
});
