// Live feeds and replays after a cursor: against a fake JetStream client for consumers that stop and fetches
// that fail part-way, and against a nats-server of this file's own, paused (SIGSTOP) as a stalled server
// would leave it, or with the feeds' connection closed under them.
import type { JetStreamClient } from '@nats-io/jetstream';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { streamFeedStops } from '../lib/metrics.ts';
import { useOwnNats } from '../test/support/ownNats.ts';
import { connectBroker } from './connection.ts';
import { StreamFeeds, type FeedMessage } from './feeds.ts';
import { Stream } from './subjects.ts';

const SUBJECT = 'kpi.acme.revenue';

/** A stored message as nats.js hands it over, with `pending` counted against `last`. */
const stored = (seq: number, last: number) => ({
  seq,
  subject: SUBJECT,
  info: { pending: last - seq },
  json: () => ({ value: seq }),
});

/**
 * A JetStream client over messages 1..last. Each consumer it creates starts at its opt_start_seq, and its
 * fetches deliver what `script` says: for the n-th consumer, 'all', or a count then a failure, or nothing.
 */
function fakeJetStream(last: number, script: Array<'all' | 'empty' | number>) {
  const starts: number[] = [];
  const js = {
    consumers: {
      get(_stream: string, options: { opt_start_seq: number }) {
        const start = options.opt_start_seq;
        const behaviour = script[starts.length] ?? 'all';
        starts.push(start);
        let next = start;
        return Promise.resolve({
          info: () => Promise.resolve({ num_pending: last - next + 1 }),
          delete: () => Promise.resolve(true),
          fetch: ({ max_messages }: { max_messages: number }) =>
            Promise.resolve(
              (function* () {
                if (behaviour === 'empty') return;
                const count = behaviour === 'all' ? max_messages : behaviour;
                for (let i = 0; i < count && next <= last; i++) yield stored(next++, last);
                if (behaviour !== 'all') throw new Error('heartbeats missed');
              })(),
            ),
        });
      },
    },
  };
  return { js: js as unknown as JetStreamClient, starts };
}

const feedsOver = (js: JetStreamClient, lines: string[] = []) =>
  new StreamFeeds(
    { isClosed: () => false, isDraining: () => false } as never,
    js,
    createLogger('test', 'warn', 'json', { write: (line: string) => void lines.push(line) }),
    { restartDelayMs: 1 },
  );

/**
 * A JetStream client over messages 1..last published after the feed starts. The n-th consumer it creates
 * starts at its opt_start_seq and, as `script[n]` says, delivers a count of messages then stops, or is
 * refused, or ('all') delivers every message and waits for more until it is closed.
 */
function fakeLiveJetStream(last: number, script: Array<'all' | 'refused' | number>) {
  const starts: number[] = [];
  const js = {
    jetstreamManager: () =>
      Promise.resolve({ streams: { info: () => Promise.resolve({ state: { last_seq: 0 } }) } }),
    consumers: {
      get(_stream: string, options: { opt_start_seq: number }) {
        const start = options.opt_start_seq;
        const behaviour = script[starts.length] ?? 'all';
        starts.push(start);
        if (behaviour === 'refused') return Promise.reject(new Error('consumer refused'));
        let close!: () => void;
        const closed = new Promise<void>((resolve) => (close = resolve));
        const count = behaviour === 'all' ? last : behaviour;
        const messages = {
          close: () => Promise.resolve(close()),
          async *[Symbol.asyncIterator]() {
            for (let seq = start; seq < start + count && seq <= last; seq++) yield stored(seq, last);
            if (behaviour === 'all') await closed;
          },
        };
        return Promise.resolve({ consume: () => Promise.resolve(messages) });
      },
    },
  };
  return { js: js as unknown as JetStreamClient, starts };
}

/** pulsegraph_stream_feed_stops_total of the KPI stream, by outcome. */
async function stops(): Promise<{ restarted: number; ended: number }> {
  const values = (await streamFeedStops.get()).values.filter((v) => v.labels.stream === Stream.KPI);
  const of = (outcome: string) => values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  return { restarted: of('restarted'), ended: of('ended') };
}

describe('StreamFeeds live feeds over stopping consumers', () => {
  it('restarts a stopped consumer after the last message dispatched: each message reaches the listener once, in order', async () => {
    const { js, starts } = fakeLiveJetStream(10, [3, 2, 'all']);
    const before = await stops();
    const lines: string[] = [];
    const seen: number[] = [];
    const ended = vi.fn();
    const feeds = feedsOver(js, lines);
    const handle = await feeds.attach(Stream.KPI, 'kpi.acme.>', (m) => seen.push(m.seq), ended);
    await vi.waitFor(() => expect(seen).toHaveLength(10));
    expect(handle.position).toBe(0);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(starts).toEqual([1, 4, 6]);
    expect(lines.filter((line) => line.includes('stream feed stopped; restarting'))).toHaveLength(2);
    expect(ended).not.toHaveBeenCalled();
    expect(await stops()).toEqual({ restarted: before.restarted + 2, ended: before.ended });
    feeds.close();
  });

  it('ends after restarts that dispatch nothing, tells its listeners, and a new listener gets a new feed', async () => {
    const { js, starts } = fakeLiveJetStream(4, [2, 'refused', 'refused', 'refused', 'refused', 'refused']);
    const before = await stops();
    const seen: number[] = [];
    const ended = vi.fn();
    const feeds = feedsOver(js);
    await feeds.attach(Stream.KPI, 'kpi.acme.>', (m) => seen.push(m.seq), ended);
    await vi.waitFor(() => expect(ended).toHaveBeenCalledTimes(1));
    expect(ended.mock.calls[0]![0]).toEqual(new Error('consumer refused'));
    expect(seen).toEqual([1, 2]);
    expect(starts).toEqual([1, 3, 3, 3, 3, 3]);
    expect(await stops()).toEqual({ restarted: before.restarted + 5, ended: before.ended + 1 });
    const later: number[] = [];
    await feeds.attach(Stream.KPI, 'kpi.acme.>', (m) => later.push(m.seq));
    await vi.waitFor(() => expect(later).toEqual([1, 2, 3, 4]));
    expect(starts).toEqual([1, 3, 3, 3, 3, 3, 1]);
    expect(seen).toEqual([1, 2]); // the ended feed's listener is not on the new feed
    feeds.close();
  });
});

describe('StreamFeeds.replay over failing fetches', () => {
  it('resumes after the last message handled when a fetch fails part-way, delivering each message once, in order', async () => {
    const { js, starts } = fakeJetStream(10, [3, 2, 'all']);
    const lines: string[] = [];
    const seen: number[] = [];
    await feedsOver(js, lines).replay(Stream.KPI, 'kpi.acme.>', 0, 10, (m: FeedMessage) => {
      seen.push(m.seq);
      return Promise.resolve();
    });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(starts).toEqual([1, 4, 6]);
    expect(lines.join('')).toContain('replay read failed; resuming');
  });

  it('rejects, instead of ending early, when fetches keep coming back empty while messages are pending', async () => {
    const { js, starts } = fakeJetStream(5, ['empty', 'empty', 'empty']);
    const seen: number[] = [];
    const replay = feedsOver(js).replay(
      Stream.KPI,
      'kpi.acme.>',
      0,
      5,
      (m) => {
        seen.push(m.seq);
        return Promise.resolve();
      },
      3,
    );
    await expect(replay).rejects.toThrow('came back empty with 5 messages pending');
    expect(seen).toEqual([]);
    expect(starts).toEqual([1, 1, 1]);
  });

  it("passes the reader's own failure on at once, without reading the message again", async () => {
    const { js, starts } = fakeJetStream(5, ['all']);
    const failure = new Error('subscriber gone');
    const replay = feedsOver(js).replay(Stream.KPI, 'kpi.acme.>', 0, 5, (m) =>
      m.seq === 2 ? Promise.reject(failure) : Promise.resolve(),
    );
    await expect(replay).rejects.toBe(failure);
    expect(starts).toEqual([1]);
  });
});

describe('StreamFeeds against nats-server', () => {
  const own = useOwnNats('feeds');

  it('replays the whole range once nats-server answers again after stalling past a request timeout', async () => {
    const seqs: number[] = [];
    for (let n = 0; n < 20; n++) {
      seqs.push((await own.broker.js.publish(SUBJECT, JSON.stringify({ n }))).seq);
      if (n === 9) await own.broker.js.publish('kpi.other.revenue', JSON.stringify({ n: -1 })); // not replayed
    }
    const lines: string[] = [];
    const feeds = new StreamFeeds(
      own.broker.nc,
      own.broker.js,
      createLogger('test', 'warn', 'json', { write: (line: string) => void lines.push(line) }),
    );
    const seen: Array<{ seq: number; body: unknown }> = [];
    process.kill(own.nats.pid!, 'SIGSTOP');
    try {
      const replay = feeds.replay(Stream.KPI, 'kpi.acme.>', seqs[4]!, seqs[19]!, (m) => {
        seen.push({ seq: m.seq, body: m.body });
        return Promise.resolve();
      });
      // Stalled until a read has failed (a JetStream request times out after 5 s), however late a busy
      // machine sends the first one: a fixed wait let the request go out late enough to be answered.
      await expect
        .poll(() => lines.join(''), { timeout: 20_000, interval: 100 })
        .toContain('replay read failed; resuming');
      process.kill(own.nats.pid!, 'SIGCONT');
      await replay;
    } finally {
      process.kill(own.nats.pid!, 'SIGCONT');
    }
    expect(seen.map((m) => m.seq)).toEqual(seqs.slice(5));
    expect(seen.map((m) => m.body)).toEqual(seqs.slice(5).map((_, i) => ({ n: i + 5 })));
  }, 40_000);

  it('dispatches what was published, then ends and tells its listeners once its connection is closed', async () => {
    const closing = await connectBroker(own.nats.url, 'feeds-closing-test');
    const before = await stops();
    const lines: string[] = [];
    const feeds = new StreamFeeds(
      closing.nc,
      closing.js,
      createLogger('test', 'warn', 'json', { write: (line: string) => void lines.push(line) }),
    );
    const seen: number[] = [];
    const ended = vi.fn();
    const { position } = await feeds.attach(Stream.KPI, 'kpi.acme.>', (m) => seen.push(m.seq), ended);
    const published: number[] = [];
    for (let n = 0; n < 3; n++)
      published.push((await own.broker.js.publish(SUBJECT, JSON.stringify({ n }))).seq);
    await vi.waitFor(() => expect(seen).toEqual(published));
    expect(published[0]).toBe(position + 1);
    await closing.close();
    await vi.waitFor(() => expect(ended).toHaveBeenCalledTimes(1));
    expect(ended.mock.calls[0]![0]).toBeInstanceOf(Error);
    expect(lines.join('')).toContain('stream feed ended');
    expect(lines.join('')).not.toContain('restarting'); // a closed connection is not worth retrying
    expect(await stops()).toEqual({ restarted: before.restarted, ended: before.ended + 1 });
  });
});
