// publishAll against the suites' shared nats-server, on streams of this file's own: acks matched to their
// messages through the connection's one ack subscription, duplicates flagged, every way a batch can fail.
import { DiscardPolicy, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { services } from '../test/support/services.ts';
import { connectBroker, type Broker } from './connection.ts';
import { publishAll, type OutgoingMessage } from './publisher.ts';

let broker: Broker;
const streams = ['PUBTEST_A', 'PUBTEST_B', 'PUBTEST_LIMITED'];

beforeAll(async () => {
  broker = await connectBroker(services().natsUrl, 'publisher-test');
  const jsm = await jetstreamManager(broker.nc);
  await jsm.streams.add({ name: 'PUBTEST_A', subjects: ['pubtest.a.>'] });
  await jsm.streams.add({ name: 'PUBTEST_B', subjects: ['pubtest.b.>'] });
  await jsm.streams.add({
    name: 'PUBTEST_LIMITED',
    subjects: ['pubtest.limited.>'],
    max_msgs: 5,
    discard: DiscardPolicy.New,
  });
});

afterAll(async () => {
  const jsm = await jetstreamManager(broker.nc);
  for (const name of streams) await jsm.streams.delete(name).catch(() => undefined);
  await broker.close();
});

const batch = (prefix: string, subject: string, count: number, from = 0): OutgoingMessage[] =>
  Array.from({ length: count }, (_, i) => ({
    subject,
    body: { n: from + i },
    msgID: `${prefix}-${from + i}`,
  }));

describe('publishAll', () => {
  it('stores every message of a batch larger than its in-flight bound, each ack matched to its message', async () => {
    const messages = batch('order', 'pubtest.a.order', 1_000);
    const { duplicate, seq } = await publishAll(broker.nc, messages, { maxInFlight: 16 });
    expect(duplicate.every((d) => !d)).toBe(true);
    expect(new Set(seq).size).toBe(1_000);
    const jsm = await jetstreamManager(broker.nc);
    for (const index of [0, 1, 499, 999]) {
      const stored = await jsm.streams.getMessage('PUBTEST_A', { seq: seq[index]! });
      expect(stored?.json()).toEqual({ n: index });
      expect(stored?.header.get('Nats-Msg-Id')).toBe(`order-${index}`);
    }
  });

  it('flags the ids the stream already had, with the sequence they were first stored at', async () => {
    const jsm = await jetstreamManager(broker.nc);
    const stored = async () => (await jsm.streams.info('PUBTEST_A')).state.messages;
    const first = await publishAll(broker.nc, batch('again', 'pubtest.a.again', 10));
    const before = await stored();
    const mixed = await publishAll(broker.nc, batch('again', 'pubtest.a.again', 10, 5)); // ids 5..14
    expect(await stored()).toBe(before + 5); // the stream grew by the new ids only
    expect(mixed.duplicate).toEqual([true, true, true, true, true, false, false, false, false, false]);
    expect(mixed.seq.slice(0, 5)).toEqual(first.seq.slice(5));
    expect(Math.min(...mixed.seq.slice(5))).toBeGreaterThan(Math.max(...first.seq));
  });

  it('keeps batches on one connection apart when they run at once', async () => {
    const [a, b] = await Promise.all([
      publishAll(broker.nc, batch('both-a', 'pubtest.a.both', 300), { maxInFlight: 7 }),
      publishAll(broker.nc, batch('both-b', 'pubtest.b.both', 300), { maxInFlight: 11 }),
    ]);
    const jsm = await jetstreamManager(broker.nc);
    expect((await jsm.streams.getMessage('PUBTEST_A', { seq: a.seq[123]! }))?.json()).toEqual({ n: 123 });
    expect((await jsm.streams.getMessage('PUBTEST_B', { seq: b.seq[123]! }))?.json()).toEqual({ n: 123 });
    expect((await jsm.streams.info('PUBTEST_B')).state.messages).toBe(300);
  });

  it('ignores a stray message on its reply subjects that names no message of the batch', async () => {
    // A core subscriber sees each message's reply subject, and answers on a sibling of it first.
    const spy = broker.nc.subscribe('pubtest.a.stray', {
      callback: (_error, message) => {
        const sibling = message.reply!.replace(/\.\d+$/, '');
        broker.nc.publish(`${sibling}.junk`, '{"stream":"PUBTEST_A","seq":999999}');
        broker.nc.publish(`${sibling}.99`, '{"stream":"PUBTEST_A","seq":999999}');
      },
    });
    await broker.nc.flush();
    const { seq } = await publishAll(broker.nc, batch('stray', 'pubtest.a.stray', 3));
    const jsm = await jetstreamManager(broker.nc);
    for (const [index, at] of seq.entries())
      expect((await jsm.streams.getMessage('PUBTEST_A', { seq: at }))?.json()).toEqual({ n: index });
    spy.unsubscribe();
  });

  it('resolves an empty batch without publishing', async () => {
    await expect(publishAll(broker.nc, [])).resolves.toEqual({ duplicate: [], seq: [] });
  });

  it('rejects when no stream takes the subject', async () => {
    await expect(publishAll(broker.nc, batch('nowhere', 'pubtest.nowhere.x', 3))).rejects.toThrow(
      'no JetStream stream takes subject pubtest.nowhere.x',
    );
  });

  it("rejects with JetStream's own error when the stream refuses a message, keeping what it stored", async () => {
    const refused = publishAll(broker.nc, batch('limited', 'pubtest.limited.x', 8), { maxInFlight: 1 });
    await expect(refused).rejects.toBeInstanceOf(JetStreamApiError);
    await expect(refused).rejects.toThrow(/maximum messages/);
    const jsm = await jetstreamManager(broker.nc);
    expect((await jsm.streams.info('PUBTEST_LIMITED')).state.messages).toBe(5);
  });

  it('rejects when no ack comes within the timeout (a plain subscriber, not a stream, took the message)', async () => {
    const bystander = broker.nc.subscribe('pubtest.silent.x');
    const started = Date.now();
    await expect(
      publishAll(broker.nc, batch('silent', 'pubtest.silent.x', 4), { timeoutMs: 300 }),
    ).rejects.toThrow('JetStream did not acknowledge 4 message(s) within 300 ms');
    expect(Date.now() - started).toBeLessThan(2_000);
    bystander.unsubscribe();
  });

  it('rejects at once on a closed connection', async () => {
    const nc = await connect({ servers: services().natsUrl });
    await nc.close();
    const started = Date.now();
    await expect(publishAll(nc, batch('closed', 'pubtest.a.closed', 2))).rejects.toThrow(/closed/i);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
