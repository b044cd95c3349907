import { randomUUID } from 'node:crypto';

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
