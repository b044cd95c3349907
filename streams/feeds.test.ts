// Replays after a cursor: against a fake JetStream client for failures in the middle of a fetch, and against
// a nats-server of this file's own, paused (SIGSTOP) as a stalled server would leave it.
import type { JetStreamClient } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { startOwnNats, type OwnNats } from '../test/support/ownNats.ts';
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
    {} as never,
    js,
    createLogger('test', 'warn', 'json', { write: (line: string) => void lines.push(line) }),
  );

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

describe('StreamFeeds.replay against nats-server', () => {
  let own: OwnNats;
  let nats: OwnNats['nats'];
  let broker: OwnNats['broker'];

  beforeAll(async () => {
    own = await startOwnNats('feeds');
    ({ nats, broker } = own);
  });

  afterAll(() => own?.stop());

  it('replays the whole range once nats-server answers again after stalling past a request timeout', async () => {
    const seqs: number[] = [];
    for (let n = 0; n < 20; n++) {
      seqs.push((await broker.js.publish(SUBJECT, JSON.stringify({ n }))).seq);
      if (n === 9) await broker.js.publish('kpi.other.revenue', JSON.stringify({ n: -1 })); // not replayed
    }
    const lines: string[] = [];
    const feeds = new StreamFeeds(
      broker.nc,
      broker.js,
      createLogger('test', 'warn', 'json', { write: (line: string) => void lines.push(line) }),
    );
    const seen: Array<{ seq: number; body: unknown }> = [];
    process.kill(nats.pid!, 'SIGSTOP');
    try {
      const replay = feeds.replay(Stream.KPI, 'kpi.acme.>', seqs[4]!, seqs[19]!, (m) => {
        seen.push({ seq: m.seq, body: m.body });
        return Promise.resolve();
      });
      await new Promise((resolve) => setTimeout(resolve, 6_500)); // past the 5 s of one JetStream request
      process.kill(nats.pid!, 'SIGCONT');
      await replay;
    } finally {
      process.kill(nats.pid!, 'SIGCONT');
    }
    expect(seen.map((m) => m.seq)).toEqual(seqs.slice(5));
    expect(seen.map((m) => m.body)).toEqual(seqs.slice(5).map((_, i) => ({ n: i + 5 })));
    expect(lines.join('')).toContain('replay read failed; resuming');
  }, 30_000);
});
