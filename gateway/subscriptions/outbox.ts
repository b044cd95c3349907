// A subscriber's bounded queue between the fan-out (which never waits) and its socket (which may be
// slow). Values of a conflatable key replace the queued one (the latest wins, the drop is counted);
// past the capacity the subscriber is overflowed and its transport closes it with a clear code.

/** What the queue holds for one subscriber. */
export interface Delivery {
  result: { data?: unknown; errors?: readonly unknown[] };
  /** Opaque position to resume after this delivery (SSE id), when the source has one. */
  cursor?: string;
  /** The result serialized once for every subscriber that shares it. */
  json(): string;
}

/** A bounded, conflating queue read as an async iterator. */
export class Outbox implements AsyncIterableIterator<Delivery> {
  private readonly queue = new Map<string, Delivery>();
  private readonly capacity: number;
  private readonly onOverflow: () => void;
  private readonly onDrop: () => void;
  private readonly onClose: () => void;
  private waiting?: (result: IteratorResult<Delivery>) => void;
  private sink?: (delivery: Delivery) => boolean;
  private roomWaiters: Array<() => void> = [];
  private unique = 0;
  private closed = false;
  private finished = false;
  /** How many queued values a newer one of the same key replaced. */
  dropped = 0;

  constructor(options: {
    capacity: number;
    onOverflow: () => void;
    onDrop?: () => void;
    /** Called once when the iteration ends, however it ends. */
    onClose?: () => void;
  }) {
    this.capacity = options.capacity;
    this.onOverflow = options.onOverflow;
    this.onDrop = options.onDrop ?? (() => undefined);
    this.onClose = options.onClose ?? (() => undefined);
  }

  /**
   * A writer that takes a delivery at once (true), or declines (false, e.g. its socket has too many
   * frames in flight). Offered every delivery while the reader waits on an empty queue, so a subscriber
   * that keeps up gets its frame written in the fan-out's own loop, without a promise hop per value;
   * whatever it declines is queued and read as before, in order.
   */
  writeDirectly(sink: (delivery: Delivery) => boolean): void {
    this.sink = sink;
  }

  /** Queues a delivery without waiting; with a key, it replaces a queued delivery of that key. */
  offer(delivery: Delivery, key?: string): void {
    if (this.closed || this.finished) return;
    if (this.waiting && this.sink?.(delivery)) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: delivery, done: false });
      return;
    }
    const id = key ?? `#${this.unique++}`;
    // Re-inserting moves the key to the end: deliveries stay in stream order, so cursors only grow.
    if (this.queue.delete(id)) {
      this.dropped++;
      this.onDrop();
    }
    if (this.queue.size >= this.capacity) {
      this.onOverflow();
      return;
    }
    this.queue.set(id, delivery);
  }

  /** Queues a delivery once there is room (replays: the reader paces the source, nothing is dropped). */
  async push(delivery: Delivery): Promise<void> {
    while (!this.closed && this.queue.size >= this.capacity / 2) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    this.offer(delivery);
  }

  next(): Promise<IteratorResult<Delivery>> {
    const first = this.queue.entries().next();
    if (!first.done) {
      this.queue.delete(first.value[0]);
      if (this.queue.size < this.capacity / 2) this.wakeWriters();
      return Promise.resolve({ value: first.value[1], done: false });
    }
    if (this.closed || this.finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  /** Ends the iteration (client unsubscribed, or the source ended). */
  return(): Promise<IteratorResult<Delivery>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Ends the iteration once what is queued has been read (the source completed). */
  finish(): void {
    if (this.finished || this.closed) return;
    this.finished = true;
    this.onClose();
    if (this.queue.size === 0) {
      this.waiting?.({ value: undefined, done: true });
      this.waiting = undefined;
    }
  }

  /** Ends the iteration now, dropping what is queued. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.finished) this.onClose();
    this.queue.clear();
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
    this.wakeWriters();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get size(): number {
    return this.queue.size;
  }

  private wakeWriters(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
