// Shared, ordered reads of a stream for the gateway's subscriptions: one feed per stream and filter
// (e.g. every KPI value of one tenant) serves every subscriber of it in stream order, plus bounded
// replays of a range (to resume after a cursor) and the latest message of a subject (snapshots).
import { jetstreamManager, type Consumer, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../lib/logger.ts';
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

interface Feed {
  listeners: Set<FeedListener>;
  /** The last sequence this feed has dispatched (or the stream's last when it started). */
  position: number;
  ready: Promise<void>;
  stop(): void;
  idleTimer?: NodeJS.Timeout;
}

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

/** Feeds over one NATS connection; idle feeds stop after `lingerMs`. */
export class StreamFeeds {
  private readonly feeds = new Map<string, Feed>();
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly logger: Logger;
  private readonly lingerMs: number;

  constructor(nc: NatsConnection, js: JetStreamClient, logger: Logger, lingerMs = 10_000) {
    this.nc = nc;
    this.js = js;
    this.logger = logger;
    this.lingerMs = lingerMs;
  }

  /**
   * Adds a listener to the feed of stream+filter, starting it if needed. Resolves with the feed's
   * position: every message after it reaches the listener, in order, and none before it does.
   */
  async attach(
    stream: string,
    filter: string,
    listener: FeedListener,
  ): Promise<{ position: number; detach(): void }> {
    const key = `${stream} ${filter}`;
    let feed = this.feeds.get(key);
    if (!feed) this.feeds.set(key, (feed = this.start(stream, filter, key)));
    clearTimeout(feed.idleTimer);
    feed.listeners.add(listener);
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
          attached.stop();
        }, this.lingerMs);
        attached.idleTimer.unref();
      },
    };
  }

  private start(stream: string, filter: string, key: string): Feed {
    let messages: { close(): Promise<void | Error> } | undefined;
    let stopped = false;
    const feed: Feed = {
      listeners: new Set(),
      position: 0,
      ready: Promise.resolve(),
      stop: () => {
        stopped = true;
        void messages?.close();
      },
    };
    feed.ready = (async () => {
      const jsm = await jetstreamManager(this.nc);
      feed.position = (await jsm.streams.info(stream)).state.last_seq;
      const consumer = await this.js.consumers.get(stream, {
        filter_subjects: filter,
        opt_start_seq: feed.position + 1,
      });
      const iterator = await consumer.consume({ max_messages: 512 });
      messages = iterator;
      if (stopped) await iterator.close();
      void (async () => {
        for await (const m of iterator) this.dispatch(feed, m);
      })().catch((error: unknown) => {
        this.logger.error({ err: error, stream, filter }, 'stream feed failed');
        if (this.feeds.get(key) === feed) this.feeds.delete(key);
      });
    })();
    feed.ready.catch(() => this.feeds.get(key) === feed && this.feeds.delete(key));
    return feed;
  }

  private dispatch(feed: Feed, m: JsMsg): void {
    feed.position = m.seq;
    const message = decode(m);
    if (!message) return;
    for (const listener of feed.listeners) {
      try {
        listener(message);
      } catch (error) {
        this.logger.error({ err: error }, 'feed listener failed');
      }
    }
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
    const jsm = await jetstreamManager(this.nc);
    const stored = await jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(() => null);
    return stored ? decode(stored) : undefined;
  }

  /** Stops every feed. */
  close(): void {
    for (const feed of this.feeds.values()) {
      clearTimeout(feed.idleTimer);
      feed.stop();
    }
    this.feeds.clear();
  }
}
