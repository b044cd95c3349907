// Shared, ordered reads of a stream for the gateway's subscriptions: one feed per stream and filter
// (e.g. every KPI value of one tenant) serves every subscriber of it in stream order, plus bounded
// replays of a range (to resume after a cursor) and the latest message of a subject (snapshots).
import type {
  Consumer,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
} from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../lib/logger.ts';
import { streamFeedStops } from '../lib/metrics.ts';
import { linkTo, type Context } from '../lib/telemetry.ts';
import { traceContextOfMessage } from './publisher.ts';

/** One message of a stream, decoded once. */
export interface FeedMessage {
  seq: number;
  subject: string;
  body: unknown;
  /** The trace its publisher was in (W3C headers), if any. */
  trace?: Context;
}

/** Receives a feed's messages in stream order. */
export type FeedListener = (message: FeedMessage) => void;

/** Told that a feed ended for good: no message after the last one it dispatched will follow. */
export type FeedEndListener = (error: unknown) => void;

interface Feed {
  /** Each listener, with what it is told if the feed ends. */
  listeners: Map<FeedListener, FeedEndListener | undefined>;
  /** The last sequence this feed has dispatched (or the stream's last when it started). */
  position: number;
  ready: Promise<void>;
  /** The consumer's iteration being read, to close on stop. */
  messages?: ConsumerMessages;
  stopped: boolean;
  idleTimer?: NodeJS.Timeout;
}

/** Restarts of a feed's consumer in a row, none of them dispatching anything, before the feed ends. */
const FEED_RESTARTS = 5;

const decode = (m: {
  seq: number;
  subject: string;
  json<T>(): T;
  headers?: JsMsg['headers'];
}): FeedMessage | undefined => {
  try {
    const trace = m.headers ? traceContextOfMessage(m) : undefined;
    return {
      seq: m.seq,
      subject: m.subject,
      body: m.json(),
      trace: trace && linkTo(trace) ? trace : undefined,
    };
  } catch {
    return undefined; // not JSON: nothing a subscriber could be given
  }
};

/** A replay's onMessage failed: passed on as it is, not retried. */
class ReaderError extends Error {
  constructor(cause: unknown) {
    super('replay reader failed', { cause });
  }
}

/**
 * Feeds over one NATS connection; idle feeds stop after `lingerMs`. A feed whose consumer stops (a protocol
 * error, a refused pull) starts a new one after the last message it dispatched, so its listeners miss
 * nothing; after FEED_RESTARTS restarts in a row that dispatch nothing, or once the connection is closing,
 * it ends and tells each listener.
 */
export class StreamFeeds {
  private readonly feeds = new Map<string, Feed>();
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly logger: Logger;
  private readonly lingerMs: number;
  private readonly restartDelayMs: number;
  private manager?: Promise<JetStreamManager>;

  /** `lingerMs`: how long a feed outlives its last listener; `restartDelayMs`: the first restart's wait. */
  constructor(
    nc: NatsConnection,
    js: JetStreamClient,
    logger: Logger,
    { lingerMs = 10_000, restartDelayMs = 200 }: { lingerMs?: number; restartDelayMs?: number } = {},
  ) {
    this.nc = nc;
    this.js = js;
    this.logger = logger;
    this.lingerMs = lingerMs;
    this.restartDelayMs = restartDelayMs;
  }

  /**
   * Adds a listener to the feed of stream+filter, starting it if needed. Resolves with the feed's
   * position: every message after it reaches the listener, in order, and none before it does. `onEnd`
   * hears of the feed ending for good (it may hear it before this resolves).
   */
  async attach(
    stream: string,
    filter: string,
    listener: FeedListener,
    onEnd?: FeedEndListener,
  ): Promise<{ position: number; detach(): void }> {
    const key = `${stream} ${filter}`;
    let feed = this.feeds.get(key);
    if (!feed) this.feeds.set(key, (feed = this.start(stream, filter, key)));
    clearTimeout(feed.idleTimer);
    feed.listeners.set(listener, onEnd);
    try {
      await feed.ready;
    } catch (error) {
      feed.listeners.delete(listener);
      throw error;
    }
    const attached = feed;
    return {
      position: attached.position,
      detach: () => {
        attached.listeners.delete(listener);
        if (attached.listeners.size > 0) return;
        attached.idleTimer = setTimeout(() => {
          if (attached.listeners.size > 0 || this.feeds.get(key) !== attached) return;
          this.feeds.delete(key);
          this.stop(attached);
        }, this.lingerMs);
        attached.idleTimer.unref();
      },
    };
  }

  private jetstreamManager(): Promise<JetStreamManager> {
    this.manager ??= this.js.jetstreamManager(false);
    return this.manager;
  }

  private start(stream: string, filter: string, key: string): Feed {
    const feed: Feed = { listeners: new Map(), position: 0, ready: Promise.resolve(), stopped: false };
    feed.ready = (async () => {
      const jsm = await this.jetstreamManager();
      feed.position = (await jsm.streams.info(stream)).state.last_seq;
      const first = await this.consume(stream, filter, feed.position);
      this.read(feed, stream, filter, key, first).catch((error: unknown) =>
        this.logger.error({ err: error, key }, 'stream feed failed'),
      );
    })();
    feed.ready.catch(() => this.feeds.get(key) === feed && this.feeds.delete(key));
    return feed;
  }

  private async consume(stream: string, filter: string, after: number): Promise<ConsumerMessages> {
    const consumer = await this.js.consumers.get(stream, {
      filter_subjects: filter,
      opt_start_seq: after + 1,
    });
    return consumer.consume({ max_messages: 512 });
  }

  /** Dispatches the feed's messages, restarting its consumer after the last one when it stops. */
  private async read(
    feed: Feed,
    stream: string,
    filter: string,
    key: string,
    first: ConsumerMessages,
  ): Promise<void> {
    let messages: ConsumerMessages | undefined = first;
    for (let failed = 0; ;) {
      const from = feed.position;
      let reason: unknown = new Error(`the consumer of ${stream} ${filter} stopped`);
      try {
        messages ??= await this.consume(stream, filter, feed.position);
        feed.messages = messages;
        if (feed.stopped) return void (await messages.close());
        for await (const m of messages) this.dispatch(feed, m);
      } catch (error) {
        reason = error;
      }
      messages = undefined;
      if (feed.stopped) return;
      failed = feed.position > from ? 1 : failed + 1;
      if (failed > FEED_RESTARTS || this.nc.isClosed() || this.nc.isDraining())
        return this.end(feed, stream, key, reason);
      streamFeedStops.inc({ stream, outcome: 'restarted' });
      this.logger.warn(
        { err: reason, stream, filter, after: feed.position },
        'stream feed stopped; restarting',
      );
      await sleep(this.restartDelayMs * 2 ** (failed - 1));
      if (feed.stopped) return;
    }
  }

  private dispatch(feed: Feed, m: JsMsg): void {
    feed.position = m.seq;
    const message = decode(m);
    if (!message) return;
    for (const listener of feed.listeners.keys()) {
      try {
        listener(message);
      } catch (error) {
        this.logger.error({ err: error }, 'feed listener failed');
      }
    }
  }

  /** The feed is over: a new attach starts a fresh one, and every listener of this one is told. */
  private end(feed: Feed, stream: string, key: string, error: unknown): void {
    streamFeedStops.inc({ stream, outcome: 'ended' });
    this.logger.error({ err: error, key, after: feed.position }, 'stream feed ended');
    if (this.feeds.get(key) === feed) this.feeds.delete(key);
    this.stop(feed);
    const listeners = [...feed.listeners.values()];
    feed.listeners.clear();
    for (const onEnd of listeners) {
      try {
        onEnd?.(error);
      } catch (failure) {
        this.logger.error({ err: failure }, 'feed end listener failed');
      }
    }
  }

  private stop(feed: Feed): void {
    clearTimeout(feed.idleTimer);
    feed.stopped = true;
    void feed.messages?.close();
  }

  /**
   * Reads the messages of stream+filter after `after` up to and including `until`, in order, waiting
   * for `onMessage` before reading on (so that a slow reader holds the replay, not memory). A fetch that
   * fails (nats-server stalled past two heartbeats, a request timing out) or comes back empty while
   * messages are pending does not end the replay: it starts over after the last message handled, and
   * rejects only after `attempts` tries in a row without progress, so a replay never skips silently.
   */
  async replay(
    stream: string,
    filter: string,
    after: number,
    until: number,
    onMessage: (message: FeedMessage) => Promise<void>,
    attempts = 5,
  ): Promise<void> {
    let last = after; // the last sequence handled
    for (let failed = 0; last < until;) {
      const from = last;
      let consumer: Consumer | undefined;
      try {
        consumer = await this.js.consumers.get(stream, { filter_subjects: filter, opt_start_seq: last + 1 });
        let pending = (await consumer.info(true)).num_pending;
        while (pending > 0) {
          const batch = await consumer.fetch({ max_messages: Math.min(pending, 256), expires: 2_000 });
          let received = 0;
          for await (const m of batch) {
            received++;
            pending = m.info.pending;
            if (m.seq > until) return;
            const message = decode(m);
            if (message)
              await onMessage(message).catch((error: unknown) => Promise.reject(new ReaderError(error)));
            last = m.seq;
            if (last === until) return;
          }
          if (received === 0) throw new Error(`a fetch came back empty with ${pending} messages pending`);
        }
        return;
      } catch (error) {
        if (error instanceof ReaderError) throw error.cause; // the reader's failure, not the stream's
        failed = last > from ? 1 : failed + 1;
        if (failed >= attempts) throw error;
        this.logger.warn({ err: error, stream, filter, after: last, until }, 'replay read failed; resuming');
        await sleep(100 * 2 ** failed);
      } finally {
        await consumer?.delete().catch(() => undefined);
      }
    }
  }

  /** The latest message on a subject, or undefined. */
  async latest(stream: string, subject: string): Promise<FeedMessage | undefined> {
    const jsm = await this.jetstreamManager();
    const stored = await jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(() => null);
    return stored ? decode(stored) : undefined;
  }

  /** Stops every feed. */
  close(): void {
    for (const feed of this.feeds.values()) this.stop(feed);
    this.feeds.clear();
  }
}
