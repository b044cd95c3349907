// Fan-out write loop: what writing one result to each of N WebSocket subscribers costs the server alone,
// without NATS, execution or the clients' core in the figure. A `ws` server on core 0
// (bench/fanout/writeServer.ts) writes each value in one of four ways, alternating, to N clients on core 1:
// the gateway's frames (gateway/transports/frames.ts), `ws.send` of a string per subscriber (the gateway
// before them), graphql-ws's message stringified per subscriber, and one pre-serialized frame for all
// (the raw broadcast, the ceiling). Every subscriber has an id of its own, as graphql-ws clients do.
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { spawnTied, stopChild } from '../scripts/childProcesses.ts';
import { calibrateHttp } from './calibrate.ts';
import { onCore, pinningUnavailable, pinSelf } from './cores.ts';
import { subscriberCount } from './fanout.ts';
import { median } from './report.ts';

/** The ways of writing a value to every subscriber that bench/fanout/writeServer.ts knows. */
const WAYS = ['gateway', 'ws.send', 'graphql-ws', 'raw'] as const;
export type Way = (typeof WAYS)[number];

// Read when the bench starts (run.ts sets BENCH_QUICK after the imports).
const quick = () => process.env['BENCH_QUICK'] === '1';
const rounds = () => (quick() ? 3 : 12);
const warmupRounds = () => (quick() ? 1 : 2);
const BATCH = 500;

type Message = { type?: string; payload?: { data?: { kpiUpdated?: { value?: number } } } };

/** Runs the write-loop benchmark and prints per-subscriber costs and their ratios to the raw broadcast. */
export async function benchFanoutWrites(): Promise<void> {
  const subscribers = quick() ? Math.min(1_000, subscriberCount()) : subscriberCount();
  const calibration = await calibrateHttp();
  const unpin = pinSelf(1);
  const [command, args] = onCore(0, process.execPath, ['bench/fanout/writeServer.ts']);
  const server = spawnTied(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const clients: WebSocket[] = [];
  try {
    const lines = createInterface({ input: server.stdout! })[Symbol.asyncIterator]();
    const port = /listening (\d+)/.exec(String((await lines.next()).value))?.[1];
    if (!port) throw new Error('the write server did not start');
    let received = 0;
    let wrong = 0;
    let expected = 0;
    for (let opened = 0; opened < subscribers; opened += BATCH) {
      const batch = Math.min(BATCH, subscribers - opened);
      await Promise.all(
        Array.from({ length: batch }, () => {
          const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
          clients.push(client);
          client.on('message', (data) => {
            const message = JSON.parse((data as Buffer).toString()) as Message;
            if (message.type !== 'next' || message.payload?.data?.kpiUpdated?.value !== expected) wrong++;
            received++;
          });
          return new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
        }),
      );
    }
    const measured: Record<Way, { loop: number[]; cpu: number[] }> = Object.fromEntries(
      WAYS.map((way) => [way, { loop: [], cpu: [] }]),
    ) as never;
    for (let round = 0; round < warmupRounds() + rounds(); round++) {
      for (const way of round % 2 ? [...WAYS].reverse() : WAYS) {
        const before = received;
        expected++;
        server.stdin!.write(`${way}\n`);
        const [, loop, cpu] = String((await lines.next()).value).split(' ');
        const deadline = Date.now() + 10_000;
        while (received < before + subscribers && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 5));
        if (received < before + subscribers)
          throw new Error(`${way}: ${received - before} of ${subscribers} subscribers got the value`);
        if (round < warmupRounds()) continue;
        measured[way].loop.push(Number(loop));
        measured[way].cpu.push(Number(cpu));
      }
    }
    if (wrong) throw new Error(`${wrong} messages were not the value written`);
    report(measured, subscribers, calibration);
  } finally {
    for (const client of clients) client.terminate();
    server.stdin!.end();
    await stopChild(server, 'SIGTERM', 5_000);
    unpin();
  }
}

function report(
  measured: Record<Way, { loop: number[]; cpu: number[] }>,
  subscribers: number,
  calibration: number,
): void {
  const unpinned = pinningUnavailable();
  console.log(
    `\nfanout-writes: one value written to ${subscribers.toLocaleString('en')} WebSocket subscribers, ` +
      `4 ways alternating, ${rounds()} rounds after ${warmupRounds()} warm-up; medians`,
  );
  console.log(
    unpinned
      ? `pinning: none (${unpinned})`
      : 'pinning: the server on core 0, the clients (this process) on core 1',
  );
  console.log(`calibration: bare node:http on one core: ${Math.round(calibration)} requests/s`);
  const perSubscriber = (ms: number) => (ms * 1000) / subscribers;
  const raw = median(measured.raw.cpu);
  console.log(
    `${'way'.padEnd(12)}  ${'loop ms'.padStart(8)}  ${'CPU ms'.padStart(8)}  ${'CPU µs/sub'.padStart(10)}  vs raw`,
  );
  for (const way of WAYS) {
    const loop = median(measured[way].loop);
    const cpu = median(measured[way].cpu);
    console.log(
      `${way.padEnd(12)}  ${loop.toFixed(1).padStart(8)}  ${cpu.toFixed(1).padStart(8)}  ` +
        `${perSubscriber(cpu).toFixed(2).padStart(10)}  ${(cpu / raw).toFixed(2)}x`,
    );
  }
  const ratio = (way: Way) => (median(measured[way].cpu) / raw).toFixed(2);
  console.log(
    `summary: server CPU per value against the raw broadcast: gateway ${ratio('gateway')}x, ` +
      `ws.send per subscriber ${ratio('ws.send')}x, graphql-ws ${ratio('graphql-ws')}x`,
  );
}
