// Buffers for the bodies of the gateway's HTTP answers, taken back and reused once their response has been
// flushed to the socket. A body of 32 KiB or more in a fresh Buffer is a fresh mapping of its own (glibc's
// threshold, gateway/processSettings.ts), and the system faults its pages in one by one as the body is
// copied into it: 22 faults for the gateway bench's 87 KB answer, about 14 µs each on the bench's virtual
// machine, where reusing the buffers cut the gateway's CPU per request by a third (docs/performance.md,
// "Page faults of the answers"). A reused buffer is resident already.
import type { ServerResponse } from 'node:http';
import { Gauge } from 'prom-client';

/** Gives response bodies their memory. */
export interface BodyBuffers {
  /** A buffer of exactly `size` bytes, for one response body. */
  readonly allocate: (size: number) => Buffer;
  /** Calls `reclaimed` when the buffers this allocated are taken back (their bytes no longer the body's). */
  onReclaim(reclaimed: () => void): void;
}

/** Bodies smaller than this are not pooled: Node's own pool or glibc's heap reuses their memory already. */
export const POOLED_FROM = 32 * 1024;
/** Bodies larger than this are not pooled: rare, and not worth the memory kept for them. */
export const POOLED_UP_TO = 4 * 1024 * 1024;
/**
 * The free memory a pool keeps, at most, over every size class: 128 buffers of the bench's answer (87 KB,
 * in the 128 KiB class), well above the answers in flight between their writing and their `finish` at 50
 * connections. Buffers taken back beyond it are left to the garbage collector.
 */
export const KEPT_AT_MOST = 16 * 1024 * 1024;

/** Free buffers by size class (powers of two from POOLED_FROM to POOLED_UP_TO). */
export class BufferPool {
  readonly #free = new Map<number, Buffer[]>();
  /** Bytes of the free buffers. */
  #kept = 0;

  /** A buffer of the class of `size` (at least `size` bytes): a free one, or a new one. */
  acquire(size: number): Buffer {
    const capacity = classOf(size);
    const free = this.#free.get(capacity)?.pop();
    if (!free) return Buffer.allocUnsafeSlow(capacity);
    this.#kept -= capacity;
    return free;
  }

  /** Takes `buffer` (one `acquire` gave) back, unless the pool keeps as much memory as it may. */
  release(buffer: Buffer): void {
    if (this.#kept + buffer.length > KEPT_AT_MOST) return;
    let free = this.#free.get(buffer.length);
    if (!free) this.#free.set(buffer.length, (free = []));
    free.push(buffer);
    this.#kept += buffer.length;
  }

  /** Buffers kept free, in bytes. */
  get keptBytes(): number {
    return this.#kept;
  }
}

function classOf(size: number): number {
  let capacity = POOLED_FROM;
  while (capacity < size) capacity *= 2;
  return capacity;
}

/** The process's pool: every HTTP answer of the gateway, and the subgraph answers it joins (subgraphHttp.ts). */
export const responseBodyPool = new BufferPool();

/** The memory the process's pool keeps free, read at scrape time. */
export const responseBodyPoolBytes = new Gauge({
  name: 'pulsegraph_gateway_body_buffers_free_bytes',
  help: 'Memory the gateway keeps free in its pool of large buffers (answer bodies, joined subgraph answers; at most 16 MiB)',
  collect() {
    this.set(responseBodyPool.keptBytes);
  },
});

/**
 * Body buffers for the answer `res` sends: a large body's buffer comes from the process's pool and goes
 * back to it once `res` has finished (every byte handed to the system). An answer that never finishes
 * (the client went away mid-write) keeps its buffer, which the garbage collector frees.
 */
export function bodyBuffersFor(res: ServerResponse, from: BufferPool = responseBodyPool): BodyBuffers {
  const lent: Buffer[] = [];
  const reclaimed: Array<() => void> = [];
  const takeBack = () => {
    for (const listener of reclaimed) listener();
    for (const buffer of lent) from.release(buffer);
  };
  return {
    allocate: (size) => {
      if (size < POOLED_FROM || size > POOLED_UP_TO) return Buffer.allocUnsafe(size);
      if (lent.length === 0) res.once('finish', takeBack);
      const buffer = from.acquire(size);
      lent.push(buffer);
      return buffer.subarray(0, size);
    },
    onReclaim(listener) {
      reclaimed.push(listener);
    },
  };
}
