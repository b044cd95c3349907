// One phase of the fan-out bench: N subscribers of one server, a few warm-up updates, then one update
// per second, each subscriber timing every update from its publication to its arrival.
import { pollUntil } from '../../scripts/network.ts';
import { cpuSeconds, residentMiB } from '../cores.ts';
import type { ServerProcess } from './servers.ts';
import { openSubscribers, type Handshake } from './subscribers.ts';

/** What one phase measured. */
export interface PhaseResult {
  name: string;
  subscribers: number;
  updates: number;
  /** Publish-to-receipt latencies in ms, one per update a subscriber received. */
  latencies: number[];
  /** Per measured update, in order: its slowest receipt in ms (when the fan-out reached the last subscriber). */
  lastReceipts: number[];
  /** Subscribers that received a value again or out of order (values only grow). */
  outOfOrder: number;
  /** Server CPU time (user + system) from the first update until the last arrived, per update. */
  cpuMsPerUpdate: number;
  /** Resident memory of the server with every subscriber connected, after the updates. */
  rssMiB: number;
  /** A `next` message as subscribers received it. */
  sample: string;
}

/** Options of runPhase. */
export interface PhaseOptions {
  name: string;
  server: ServerProcess;
  subscribers: number;
  /** Sockets opened at a time. */
  batch: number;
  /** Updates sent before measuring (JIT, first sends), one second apart. */
  warmup: number;
  /** Measured updates, one per second. */
  updates: number;
  /** How long after the last update to wait for stragglers. */
  drainMs: number;
  /** A value no earlier update carried: values only grow, across phases too. */
  nextValue(): number;
  publish(value: number): Promise<void> | void;
  /** graphql-ws handshake; none for the raw baseline. */
  handshake?: Handshake;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Subscribes, sends the warm-up then the measured updates, waits for them to arrive, unsubscribes. */
export async function runPhase(options: PhaseOptions): Promise<PhaseResult> {
  const { name, server, updates } = options;
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const lastReceipt = new Map<number, number>();
  const subscribers = await openSubscribers({
    url: server.wsUrl,
    count: options.subscribers,
    batch: options.batch,
    handshake: options.handshake,
    onValue(value, receivedAt) {
      const published = sentAt.get(value);
      if (published === undefined) return;
      latencies.push(receivedAt - published);
      lastReceipt.set(value, Math.max(lastReceipt.get(value) ?? 0, receivedAt - published));
    },
  });
  try {
    for (let i = 0; i < options.warmup; i++) {
      await options.publish(options.nextValue());
      await sleep(1_000);
    }
    const cpuBefore = cpuSeconds(server.pid);
    const start = performance.now();
    for (let i = 0; i < updates; i++) {
      await sleep(start + i * 1_000 - performance.now());
      const value = options.nextValue();
      // Before publishing: a subscriber may receive the value before the publish call returns.
      sentAt.set(value, performance.now());
      await options.publish(value);
    }
    const expected = options.subscribers * updates;
    await pollUntil(() => Promise.resolve(latencies.length >= expected), {
      timeoutMs: options.drainMs,
      intervalMs: 20,
    });
    const cpuMsPerUpdate = ((cpuSeconds(server.pid) - cpuBefore) * 1000) / updates;
    for (const [why, n] of subscribers.lost) console.log(`${name}: ${n} subscribers lost: ${why}`);
    return {
      name,
      subscribers: options.subscribers,
      updates,
      latencies,
      lastReceipts: [...sentAt.keys()].map((value) => lastReceipt.get(value) ?? NaN),
      outOfOrder: subscribers.outOfOrder,
      cpuMsPerUpdate,
      rssMiB: residentMiB(server.pid),
      sample: subscribers.sample,
    };
  } finally {
    await subscribers.close();
  }
}
