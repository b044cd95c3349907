import {
  AckPolicy,
  DeliverPolicy,
  jetstreamManager,
  JetStreamApiError,
  type ConsumerConfig,
  type JetStreamClient,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../lib/logger.ts';
import { jetstreamMessages, jetstreamPending } from '../lib/metrics.ts';
import { ATTR_COMPONENT, linkTo, SpanKind, withSpan } from '../lib/telemetry.ts';
import { retryUnanswered } from './connection.ts';
import { traceContextOfMessage } from './publisher.ts';
import { Stream, type StreamName } from './subjects.ts';

/** A durable pull consumer of the platform. */
export interface DurableConsumer {
  stream: StreamName;
  config: Partial<ConsumerConfig> & { durable_name: string };
}

const base = { ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All };

/** The durable consumers, by role: each process creates the ones it reads at start. */
export const consumers = {
  /** Writes events to Postgres with their rollups; acks after commit. */
  writer: {
    stream: Stream.EVENTS,
    config: {
      ...base,
      durable_name: 'writer',
      // A batch commits within seconds; after a crash its messages come back this soon.
      ack_wait: nanos(15_000),
      max_deliver: -1,
      max_ack_pending: 20_000,
    },
  },
  /**
   * Generates reports (subgraphs/reports/worker.ts), one job at a time per worker, any number of
   * workers sharing it. A long report signals progress (working) well within ack_wait; a worker that
   * dies leaves its job to be redelivered after ack_wait. Redelivery is unbounded here because the
   * worker bounds attempts itself, counted in report_generations: a max_deliver would drop the job
   * of a worker that died on the last delivery and leave its generation RUNNING for ever.
   */
  reportWorker: {
    stream: Stream.REPORTS,
    config: { ...base, durable_name: 'report-worker', ack_wait: nanos(30_000), max_deliver: -1 },
  },
  /**
   * Judges each KPI on its values (subgraphs/insights/detector.ts) and acks once the insights that
   * changed are stored and published. Only new values: every judgment is about the present, so a
   * week of old values would only repeat it. A value that keeps failing is dropped after 5
   * deliveries: the KPI's next value judges it again.
   */
  detector: {
    stream: Stream.KPI,
    config: {
      ...base,
      durable_name: 'detector',
      deliver_policy: DeliverPolicy.New,
      ack_wait: nanos(30_000),
      max_deliver: 5,
    },
  },
  /** Recomputes a KPI's rollups from stored events when its definition changes (long: it signals progress). */
  backfill: {
    stream: Stream.METADATA,
    config: { ...base, durable_name: 'rollup-backfill', ack_wait: nanos(60_000), max_deliver: -1 },
  },
} satisfies Record<string, DurableConsumer>;

/**
 * Creates the durable consumer or updates it to this config; safe from every instance at start, and
 * retried while nats-server leaves it unanswered (retryUnanswered).
 */
export async function ensureConsumer(nc: NatsConnection, consumer: DurableConsumer): Promise<void> {
  await retryUnanswered(() => ensureConsumerOnce(nc, consumer));
}

async function ensureConsumerOnce(nc: NatsConnection, consumer: DurableConsumer): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.consumers.info(consumer.stream, consumer.config.durable_name);
    const { deliver_policy: _fixed, ...changeable } = consumer.config;
    await jsm.consumers.update(consumer.stream, consumer.config.durable_name, changeable);
  } catch (error) {
    if (!(error instanceof JetStreamApiError) || error.status !== 404) throw error;
    await jsm.consumers.add(consumer.stream, consumer.config);
  }
}

/**
 * Pulls batches from a durable consumer until the signal aborts and hands each to `handle`, which
 * must ack, nak or term every message. A handler failure naks the batch with a growing delay, so a
 * broken dependency (Postgres down) backs off instead of spinning.
 */
export async function pullBatches(
  js: JetStreamClient,
  consumer: DurableConsumer,
  options: { batch: number; expiresMs: number; signal: AbortSignal; logger: Logger },
  handle: (messages: JsMsg[]) => Promise<void>,
): Promise<void> {
  const source = await js.consumers.get(consumer.stream, consumer.config.durable_name);
  let failures = 0;
  while (!options.signal.aborted) {
    let messages: JsMsg[] = [];
    let fetchFailed = false;
    try {
      const batch = await source.fetch({ max_messages: options.batch, expires: options.expiresMs });
      for await (const message of batch) messages.push(message);
    } catch (error) {
      // A fetch can fail after it delivered messages (nats.js gives up on two missed idle heartbeats,
      // e.g. while nats-server or this process stalls): they are ours until ack_wait, so they are handled
      // below rather than left to come back only after ack_wait runs out.
      options.logger.warn({ err: error, received: messages.length }, 'fetch failed; retrying');
      fetchFailed = true;
    }
    if (fetchFailed && !messages.length) {
      await sleep(Math.min(5_000, 250 * 2 ** failures++), options.signal);
      continue;
    }
    if (!messages.length) continue;
    countReceived(consumer.config.durable_name, messages);
    try {
      await consumeSpan(consumer, messages, () => handle(messages));
      failures = 0;
    } catch (error) {
      const delay = Math.min(10_000, 250 * 2 ** failures++);
      options.logger.error(
        { err: error, messages: messages.length, retryInMs: delay },
        'batch failed; will retry',
      );
      for (const message of messages) message.nak(delay);
      messages = [];
      await sleep(delay, options.signal);
    }
  }
}

function countReceived(durable: string, messages: JsMsg[]): void {
  let redelivered = 0;
  for (const message of messages) if (message.redelivered) redelivered++;
  jetstreamMessages.inc({ consumer: durable, redelivered: 'false' }, messages.length - redelivered);
  if (redelivered) jetstreamMessages.inc({ consumer: durable, redelivered: 'true' }, redelivered);
  jetstreamPending.set({ consumer: durable }, messages.at(-1)!.info.pending);
}

/**
 * Handles a batch inside one CONSUMER span that continues the trace of its first message, linked to the
 * traces of the others (a batch mixes many publishers' messages).
 */
function consumeSpan(
  consumer: DurableConsumer,
  messages: JsMsg[],
  handle: () => Promise<void>,
): Promise<void> {
  const contexts = messages.map(traceContextOfMessage);
  const seen = new Set<string>();
  const links = contexts.slice(1).flatMap((ctx) => {
    const link = linkTo(ctx);
    if (!link || seen.has(link.context.traceId)) return [];
    seen.add(link.context.traceId);
    return [link];
  });
  return withSpan(
    `jetstream consume ${consumer.config.durable_name}`,
    {
      kind: SpanKind.CONSUMER,
      parent: contexts[0],
      links: links.slice(0, 128),
      attributes: {
        [ATTR_COMPONENT]: 'jetstream',
        'messaging.system': 'nats',
        'messaging.consumer.group.name': consumer.config.durable_name,
        'messaging.batch.message_count': messages.length,
      },
    },
    handle,
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
