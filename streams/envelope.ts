import { randomUUID } from 'node:crypto';
import type { ValidEvent } from '../lib/events.ts';
import type { OutgoingMessage } from './publisher.ts';
import { subjects } from './subjects.ts';

/** The message envelope of runtime.md (from the architecture seed), carried by every stream. */
export interface Envelope<Payload> {
  event_id: string;
  event_type: string;
  timestamp: string;
  source_service: string;
  correlation_id: string;
  tenant: string;
  payload: Payload;
}

/** Wraps a payload in the envelope; event_id defaults to a fresh UUID. */
export function envelope<Payload>(fields: {
  eventType: string;
  source: string;
  tenant: string;
  payload: Payload;
  eventId?: string;
  correlationId?: string;
  timestamp?: Date;
}): Envelope<Payload> {
  const eventId = fields.eventId ?? randomUUID();
  return {
    event_id: eventId,
    event_type: fields.eventType,
    timestamp: (fields.timestamp ?? new Date()).toISOString(),
    source_service: fields.source,
    correlation_id: fields.correlationId ?? eventId,
    tenant: fields.tenant,
    payload: fields.payload,
  };
}

/** The payload of an ingested event on the EVENTS stream. */
export interface EventPayload {
  type: ValidEvent['type'];
  name: string;
  source: string;
  timestamp: string;
  attributes: Record<string, unknown>;
  metadata: Record<string, string> | null;
  version: string | null;
}

/** An ingested event as carried by the EVENTS stream: subject, envelope and Nats-Msg-Id (tenant-scoped id). */
export function eventMessage(
  tenant: string,
  eventId: string,
  event: ValidEvent,
  correlationId?: string,
): OutgoingMessage {
  const payload: EventPayload = {
    type: event.type,
    name: event.name,
    source: event.source,
    timestamp: event.timestamp.toISOString(),
    attributes: event.attributes,
    metadata: event.metadata,
    version: event.version,
  };
  return {
    subject: subjects.event(tenant, event.name),
    msgID: `${tenant}:${eventId}`,
    body: envelope({
      eventType: event.name,
      source: 'metrics',
      tenant,
      eventId,
      payload,
      correlationId,
      timestamp: event.timestamp,
    }),
  };
}

/** Reads an event envelope back; throws (a poison message) when it is not one. */
export function decodeEventMessage(data: unknown): { tenant: string; eventId: string; event: ValidEvent } {
  const message = data as Partial<Envelope<Partial<EventPayload>>> | null;
  const payload = message?.payload;
  const timestamp = new Date(payload?.timestamp ?? '');
  if (
    typeof message?.tenant !== 'string' ||
    typeof message.event_id !== 'string' ||
    typeof payload?.name !== 'string' ||
    typeof payload.type !== 'string' ||
    typeof payload.source !== 'string' ||
    Number.isNaN(timestamp.getTime())
  ) {
    throw new Error(
      'not an event envelope: expected tenant, event_id and payload { type, name, source, timestamp }',
    );
  }
  return {
    tenant: message.tenant,
    eventId: message.event_id,
    event: {
      id: message.event_id,
      type: payload.type,
      name: payload.name,
      source: payload.source,
      timestamp,
      attributes: payload.attributes ?? {},
      metadata: payload.metadata ?? null,
      version: payload.version ?? null,
    },
  };
}
