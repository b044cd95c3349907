import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { Delivery } from '../subscriptions/outbox.ts';
import { nextPrefix, writeNextFrame } from './frames.ts';

const delivery = (value: unknown): Delivery => {
  const result = { data: { value } };
  return { result, json: () => JSON.stringify(result) };
};

let server: Server | undefined;
let streams: Duplex[] = [];
afterEach(async () => {
  for (const stream of streams) stream.destroy(); // upgraded sockets: server.close() would wait for them
  streams = [];
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

/** A `ws` client connected to a server that hands over the socket under the connection. */
async function connected(): Promise<{ client: WebSocket; serverSide: WebSocket; stream: Duplex }> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server = createServer();
  const accepted = new Promise<{ serverSide: WebSocket; stream: Duplex }>((resolve) =>
    server!.on('upgrade', (request, stream: Duplex, head) =>
      wss.handleUpgrade(request, stream, head, (serverSide) => {
        streams.push(stream);
        resolve({ serverSide, stream });
      }),
    ),
  );
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  client.on('error', () => undefined); // a malformed frame: the client closes, and the test sees the close
  return { client, ...(await accepted) };
}

describe('next frames written straight to the socket', () => {
  it('reach a ws client whole at every header size, multi-byte text included, in order with ws messages', async () => {
    const { client, serverSide, stream } = await connected();
    const id = 'sub-é-1';
    // A value of ASCII letters whose frame carries exactly `length` bytes of payload.
    const overhead = Buffer.byteLength(
      `{"id":${JSON.stringify(id)},"type":"next","payload":{"data":{"value":""}}}`,
    );
    const sized = (length: number) => 'x'.repeat(length - overhead);
    // Both sides of each header size (125 / 126, 65,535 / 65,536) and of the copy limit, and multi-byte text.
    const values = [
      sized(overhead),
      'é'.repeat(30),
      sized(125),
      sized(126),
      '🙂'.repeat(1_000),
      sized(4_090),
      sized(4_096),
      sized(65_535),
      sized(65_536),
      sized(200_000),
    ];
    const received: string[] = [];
    const all = new Promise<void>((resolve, reject) => {
      client.on('message', (data) => {
        received.push((data as Buffer).toString());
        if (received.length === values.length + 1) resolve();
      });
      client.once('close', (code) => reject(new Error(`the client closed with ${code}`)));
    });
    const prefix = nextPrefix(id);
    const completions: Array<Error | null | undefined> = [];
    for (const value of values) writeNextFrame(stream, prefix, delivery(value), (e) => completions.push(e));
    serverSide.send(JSON.stringify({ id, type: 'complete' }));
    await all;
    expect(received.map((text) => JSON.parse(text) as unknown)).toEqual([
      ...values.map((value) => ({ id, type: 'next', payload: { data: { value } } })),
      { id, type: 'complete' },
    ]);
    expect(completions.filter(Boolean)).toEqual([]);
    expect(completions).toHaveLength(values.length);
    client.close();
  }, 10_000);

  it('encodes a result once for every subscriber it is written to', async () => {
    const { client, stream } = await connected();
    let serialized = 0;
    const shared: Delivery = { result: { data: { n: 1 } }, json: () => (serialized++, '{"data":{"n":1}}') };
    const received: string[] = [];
    const all = new Promise<void>((resolve, reject) => {
      client.on('message', (data) => received.push((data as Buffer).toString()) === 3 && resolve());
      client.once('close', (code) => reject(new Error(`the client closed with ${code}`)));
    });
    for (const id of ['a', 'b', 'c']) writeNextFrame(stream, nextPrefix(id), shared, () => undefined);
    await all;
    expect(received).toEqual(
      ['a', 'b', 'c'].map((id) => `{"id":"${id}","type":"next","payload":{"data":{"n":1}}}`),
    );
    expect(serialized).toBe(1);
    client.close();
  }, 10_000);

  it('reports a write to a destroyed socket to its callback instead of throwing', async () => {
    const { client, stream } = await connected();
    stream.destroy();
    const error = await new Promise<Error | null | undefined>((resolve) =>
      writeNextFrame(stream, nextPrefix('1'), delivery(1), resolve),
    );
    expect(error).toBeInstanceOf(Error);
    client.terminate();
  });
});
