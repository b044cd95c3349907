// The server side of `npm run bench -- fanout-writes`: a `ws` server whose every connection is a
// subscription with an id of its own. Each line on stdin names a way to write one result to every
// connection; it writes it, waits for the writes to settle and prints `<way> <loop ms> <cpu ms>`: the
// synchronous loop's wall time and the process's CPU time over the loop and what followed it.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer, type WebSocket } from 'ws';
import { nextPrefix, writeNextFrame } from '../../gateway/transports/frames.ts';
import type { Delivery } from '../../gateway/subscriptions/outbox.ts';
import type { Way } from '../fanoutWrites.ts';

interface Subscriber {
  socket: WebSocket;
  stream: Duplex;
  id: string;
  prefix: Buffer;
  prefixText: string;
}

const subscribers: Subscriber[] = [];
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const server = createServer();
server.on('upgrade', (request, stream: Duplex, head) =>
  wss.handleUpgrade(request, stream, head, (socket) => {
    const id = crypto.randomUUID(); // as graphql-ws clients name their subscriptions
    const prefixText = `{"id":"${id}","type":"next","payload":`;
    subscribers.push({ socket, stream, id, prefix: nextPrefix(id), prefixText });
  }),
);
server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as AddressInfo).port}`));

const writes: Record<Way, (delivery: Delivery, done: () => void) => void> = {
  // frames.ts: the result's bytes once per value, one Buffer and one write per subscriber.
  gateway: (delivery, done) => {
    for (const s of subscribers) writeNextFrame(s.stream, s.prefix, delivery, done);
  },
  // The gateway before frames.ts: ws.send of a string per subscriber around the shared JSON.
  'ws.send': (delivery, done) => {
    for (const s of subscribers) s.socket.send(`${s.prefixText}${delivery.json()}}`, done);
  },
  // graphql-ws's server: each subscriber's message stringified whole (it emits `next` per subscriber).
  'graphql-ws': (delivery, done) => {
    for (const s of subscribers)
      s.socket.send(JSON.stringify({ id: s.id, type: 'next', payload: delivery.result }), done);
  },
  // The ceiling: one frame of the same size for everyone (the first subscriber's id), no callback.
  raw: (delivery) => {
    const frame = Buffer.from(`${subscribers[0]?.prefixText}${delivery.json()}}`);
    for (const s of subscribers) s.socket.send(frame, { binary: false });
  },
};

let value = 0;
for await (const line of createInterface({ input: process.stdin })) {
  const way = line.trim() as Way;
  const result = {
    data: {
      kpiUpdated: {
        value: ++value,
        at: new Date().toISOString(),
        cursor: 'KPI_VALUES:1234567',
        kpi: { name: 'Orders', unit: 'count' },
      },
    },
  };
  let json: string | undefined;
  const delivery: Delivery = { result, json: () => (json ??= JSON.stringify(result)) };
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  writes[way](delivery, () => undefined);
  const loopMs = performance.now() - start;
  await sleep(300); // the write callbacks and the sockets' drains: their CPU counts too
  const cpu = process.cpuUsage(cpuBefore);
  console.log(`${way} ${loopMs.toFixed(2)} ${((cpu.user + cpu.system) / 1000).toFixed(2)}`);
}
for (const { socket } of subscribers) socket.terminate();
server.close();
