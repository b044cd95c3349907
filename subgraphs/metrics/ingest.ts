import { withTenant } from '../../db/pool.ts';
import { appError } from '../../lib/errors.ts';
import { ingestedEvents } from '../../lib/metrics.ts';
import { eventIdOf, MAX_BATCH_EVENTS, validateEvents, type EventRejection } from '../../lib/events.ts';
import type { PlatformDeps, SubgraphContext } from '../../lib/subgraphServer.ts';
import { eventMessage } from '../../streams/envelope.ts';
import { publishAll } from '../../streams/publisher.ts';
import { eventStore } from './store.ts';

/** The answer of ingestEvents. */
export interface IngestResult {
  accepted: number;
  duplicates: number;
  rejected: EventRejection[];
}

/**
 * Validates a batch event by event, skips ids the batch repeats or the store already has, and
 * publishes the rest to JetStream (Nats-Msg-Id = tenant:id); answers once JetStream stored them all.
 */
export async function ingestEvents(
  context: SubgraphContext<PlatformDeps>,
  events: readonly unknown[],
): Promise<IngestResult> {
  const { tenant } = context.principal;
  if (events.length > MAX_BATCH_EVENTS) {
    throw appError(
      'BAD_USER_INPUT',
      `expected at most ${MAX_BATCH_EVENTS} events in one batch, but got ${events.length}`,
    );
  }
  const { valid, rejected } = validateEvents(events);
  const batch = new Map<string, (typeof valid)[number]['event']>();
  let duplicates = 0;
  for (const { event } of valid) {
    const id = eventIdOf(event);
    if (batch.has(id)) duplicates += 1;
    else batch.set(id, event);
  }
  // With Postgres down, ingest goes on into JetStream: its dedup window and the writer's event_ids still
  // store each event once; only an id older than the window is then counted accepted, not duplicate.
  const stored = await withTenant(context.pool, tenant, (client) =>
    eventStore.existingIds(client, [...batch.keys()]),
  ).catch((error: unknown) => {
    context.logger.warn({ err: error }, 'stored ids unreadable; relying on the stream and writer to dedup');
    return new Set<string>();
  });
  const fresh = [...batch].filter(([id]) => !stored.has(id));
  duplicates += batch.size - fresh.length;
  const correlationId = context.requestId;
  try {
    const { duplicate } = await publishAll(
      context.broker.nc,
      fresh.map(([id, event]) => eventMessage(tenant, id, event, correlationId)),
    );
    const already = duplicate.filter(Boolean).length;
    ingestedEvents.inc({ outcome: 'accepted' }, fresh.length - already);
    ingestedEvents.inc({ outcome: 'duplicate' }, duplicates + already);
    ingestedEvents.inc({ outcome: 'rejected' }, rejected.length);
    context.logger.debug(
      { accepted: fresh.length - already, duplicates: duplicates + already },
      'events ingested',
    );
    return { accepted: fresh.length - already, duplicates: duplicates + already, rejected };
  } catch (error) {
    context.logger.error({ err: error, events: fresh.length }, 'publishing events failed');
    throw appError(
      'SERVICE_UNAVAILABLE',
      'the event stream did not acknowledge every event; retrying the same batch is safe',
    );
  }
}
