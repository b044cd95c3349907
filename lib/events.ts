import { createHash } from 'node:crypto';
import { z } from 'zod';

/** The event types of the contract. */
export const EVENT_TYPES = ['USER_ACTION', 'SYSTEM_METRIC', 'BUSINESS_EVENT', 'CUSTOM_EVENT'] as const;

/** The most events one ingest call (GraphQL or POST /events) may carry. */
export const MAX_BATCH_EVENTS = 10_000;

/** How far in the future an event's timestamp may lie (clock skew of producers). */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

const MAX_ATTRIBUTES_BYTES = 16_384;
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

const optionalText = (max: number) => z.string().max(max, `expected at most ${max} characters`).nullish();

const eventSchema = z.object({
  id: z
    .string()
    .min(1, 'expected a non-empty id')
    .max(128, 'expected at most 128 characters')
    .regex(/^[\x21-\x7e]+$/, 'expected printable ASCII without spaces')
    .nullish(),
  type: z.enum(EVENT_TYPES, { message: `expected one of ${EVENT_TYPES.join(', ')}` }),
  name: z
    .string()
    .max(200, 'expected at most 200 characters')
    .regex(
      /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
      'expected letters, digits, "_", "-" and dots, e.g. checkout.completed',
    ),
  source: z.string().min(1, 'expected a non-empty source').max(200, 'expected at most 200 characters'),
  timestamp: z.union([z.string(), z.date()]).transform((value, ctx) => {
    const text = value instanceof Date ? value.toISOString() : value;
    const date = new Date(text);
    if (!ISO_WITH_ZONE.test(text) || Number.isNaN(date.getTime())) {
      ctx.addIssue({
        code: 'custom',
        message: `expected an ISO-8601 date-time with zone, but got "${text}"`,
      });
      return z.NEVER;
    }
    return date;
  }),
  attributes: z
    .record(z.string(), z.unknown(), { message: 'expected a JSON object' })
    .nullish()
    .refine((a) => !a || JSON.stringify(a).length <= MAX_ATTRIBUTES_BYTES, {
      message: `expected at most ${MAX_ATTRIBUTES_BYTES} bytes of JSON`,
    }),
  metadata: z
    .object({
      sourceIp: optionalText(64),
      userAgent: optionalText(512),
      sessionId: optionalText(128),
      batchId: optionalText(128),
    })
    .strict()
    .nullish(),
  version: optionalText(32),
});

/** A validated event, with defaults filled in (id still optional: see eventIdOf). */
export interface ValidEvent {
  id: string | null;
  type: (typeof EVENT_TYPES)[number];
  name: string;
  source: string;
  timestamp: Date;
  attributes: Record<string, unknown>;
  metadata: Record<string, string> | null;
  version: string | null;
}

/** One refused event of a batch. */
export interface EventRejection {
  index: number;
  message: string;
}

/** Validates every event of a batch on its own: the good ones go on, each bad one is reported with its index. */
export function validateEvents(
  events: readonly unknown[],
  now = Date.now(),
): { valid: Array<{ index: number; event: ValidEvent }>; rejected: EventRejection[] } {
  const valid: Array<{ index: number; event: ValidEvent }> = [];
  const rejected: EventRejection[] = [];
  events.forEach((raw, index) => {
    const parsed = eventSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.join('.') || 'event';
      rejected.push({ index, message: `${field}: ${issue.message}` });
      return;
    }
    const { id, type, name, source, timestamp, attributes, metadata, version } = parsed.data;
    if (timestamp.getTime() > now + MAX_FUTURE_SKEW_MS) {
      rejected.push({ index, message: `timestamp: ${timestamp.toISOString()} lies in the future` });
      return;
    }
    const meta = metadata ? Object.fromEntries(Object.entries(metadata).filter(([, v]) => v != null)) : null;
    valid.push({
      index,
      event: {
        id: id ?? null,
        type,
        name,
        source,
        timestamp,
        attributes: attributes ?? {},
        metadata: meta && Object.keys(meta).length ? (meta as Record<string, string>) : null,
        version: version ?? null,
      },
    });
  });
  return { valid, rejected };
}

/**
 * The idempotency key of an event: the client's id, or a hash of its content, so that a client
 * retrying a batch of id-less events after a timeout does not count them twice. (Two truly identical
 * id-less events, same name, source, timestamp and attributes, count once; send ids to tell them apart.)
 */
export function eventIdOf(event: ValidEvent): string {
  if (event.id) return event.id;
  const content = JSON.stringify([
    event.type,
    event.name,
    event.source,
    event.timestamp.toISOString(),
    event.attributes,
    event.metadata,
    event.version,
  ]);
  return `h-${createHash('sha256').update(content).digest('base64url').slice(0, 32)}`;
}
