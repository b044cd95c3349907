// Body buffers lent to one HTTP answer: large ones from the pool and back once the answer has finished,
// small and huge ones never pooled, nothing taken back from an answer that did not finish.
import { EventEmitter } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  bodyBuffersFor,
  BufferPool,
  KEPT_AT_MOST,
  POOLED_FROM,
  POOLED_UP_TO,
  responseBodyPool,
  responseBodyPoolBytes,
} from './responseBuffers.ts';

const answer = () => new EventEmitter() as unknown as ServerResponse;

describe('body buffers of an HTTP answer', () => {
  it('lends a large body a pooled buffer, and reuses it for the next answer once this one has finished', () => {
    const pool = new BufferPool();
    const first = answer();
    const lent = bodyBuffersFor(first, pool).allocate(88_000);
    expect(lent.length).toBe(88_000);
    expect(pool.keptBytes).toBe(0);
    first.emit('finish');
    expect(pool.keptBytes).toBe(128 * 1024);
    const next = bodyBuffersFor(answer(), pool).allocate(100_000);
    expect(next.length).toBe(100_000);
    expect(next.buffer).toBe(lent.buffer);
    expect(pool.keptBytes).toBe(0);
  });

  it('tells its listeners before the buffers go back, and only for an answer that finished', () => {
    const pool = new BufferPool();
    const finished = answer();
    const cut = answer();
    const told: string[] = [];
    for (const [name, res] of [
      ['finished', finished],
      ['cut', cut],
    ] as const) {
      const body = bodyBuffersFor(res, pool);
      body.onReclaim(() => told.push(`${name}: ${pool.keptBytes}`));
      body.allocate(POOLED_FROM);
    }
    cut.emit('close');
    finished.emit('finish');
    expect(told).toEqual(['finished: 0']);
    expect(pool.keptBytes).toBe(POOLED_FROM);
  });

  it('keeps a buffer from the next answers while its own is still being written to a slow connection', async () => {
    const pool = new BufferPool();
    const server = createServer((req, res) => {
      res.end(bodyBuffersFor(res, pool).allocate(100_000).fill(Number(req.headers['x-fill'])));
    });
    /** A connection that takes what is written to it (without copying) only once `flowing` is set. */
    const connection = (fill: number, flowing: boolean) => {
      const received: Buffer[] = [];
      const held: Array<() => void> = [];
      let ended: () => void = () => {};
      const done = new Promise<void>((resolve) => (ended = resolve));
      const socket = new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, taken) {
          received.push(chunk);
          if (flowing) taken();
          else held.push(taken);
          if (Buffer.concat(received).includes('\r\n\r\n') && Buffer.concat(received).length > 100_000)
            ended();
        },
      });
      server.emit('connection', socket);
      socket.push(`GET / HTTP/1.1\r\nhost: x\r\nx-fill: ${fill}\r\n\r\n`);
      const body = () => {
        const all = Buffer.concat(received);
        return all.subarray(all.length - 100_000);
      };
      const flow = () => {
        flowing = true;
        for (const taken of held.splice(0)) taken();
      };
      return { body, flow, done };
    };
    const slow = connection(1, false);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const fast = connection(2, true);
    await fast.done;
    expect(fast.body().every((byte) => byte === 2)).toBe(true);
    slow.flow();
    await slow.done;
    expect(slow.body().every((byte) => byte === 1)).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.keptBytes).toBe(2 * 128 * 1024);
  });

  it('gives small and huge bodies Buffers of their own', () => {
    const pool = new BufferPool();
    const res = answer();
    const body = bodyBuffersFor(res, pool);
    expect(body.allocate(POOLED_FROM - 1).length).toBe(POOLED_FROM - 1);
    expect(body.allocate(POOLED_UP_TO + 1).length).toBe(POOLED_UP_TO + 1);
    expect(res.listenerCount('finish')).toBe(0);
    res.emit('finish');
    expect(pool.keptBytes).toBe(0);
  });

  it('keeps at most 16 MiB of free buffers in all its size classes', () => {
    const pool = new BufferPool();
    const huge = [pool.acquire(POOLED_UP_TO), pool.acquire(POOLED_UP_TO)];
    const buffers = Array.from({ length: 200 }, () => pool.acquire(100_000));
    for (const buffer of [...huge, ...buffers]) pool.release(buffer);
    expect(pool.keptBytes).toBe(KEPT_AT_MOST);
    // 2 of 4 MiB, then 64 of 128 KiB; the rest was left to the garbage collector.
    expect(pool.acquire(POOLED_UP_TO).length).toBe(POOLED_UP_TO);
    expect(pool.keptBytes).toBe(KEPT_AT_MOST - POOLED_UP_TO);
    const again = Array.from({ length: 65 }, () => pool.acquire(100_000));
    expect(pool.keptBytes).toBe(POOLED_UP_TO);
    expect(new Set(again.map((buffer) => buffer.buffer)).size).toBe(65);
    expect(again.filter((buffer) => buffers.includes(buffer))).toHaveLength(64);
  });

  it("shows the process pool's free memory on /metrics", async () => {
    const res = answer();
    bodyBuffersFor(res).allocate(3 * 1024 * 1024);
    const before = responseBodyPool.keptBytes;
    res.emit('finish');
    const value = async () => (await responseBodyPoolBytes.get()).values[0]?.value;
    expect(await value()).toBe(before + 4 * 1024 * 1024);
    responseBodyPool.acquire(3 * 1024 * 1024);
    expect(await value()).toBe(before);
  });
});
