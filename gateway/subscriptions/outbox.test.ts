import { describe, expect, it, vi } from 'vitest';
import { Outbox, type Delivery } from './outbox.ts';

const delivery = (n: number): Delivery => ({ result: { data: { n } }, json: () => `{"n":${n}}` });
const take = async (outbox: Outbox, count: number) => {
  const values: unknown[] = [];
  for (let i = 0; i < count; i++) values.push(((await outbox.next()).value as Delivery).result.data);
  return values;
};

describe('a subscriber outbox', () => {
  it('hands values to a waiting reader at once, in order', async () => {
    const outbox = new Outbox({ capacity: 4, onOverflow: vi.fn() });
    const next = outbox.next();
    outbox.offer(delivery(1));
    outbox.offer(delivery(2));
    expect(((await next).value as Delivery).result.data).toEqual({ n: 1 });
    expect(await take(outbox, 1)).toEqual([{ n: 2 }]);
  });

  it('lets a direct writer take values while its reader waits, and queues in order what it declines', async () => {
    const outbox = new Outbox({ capacity: 4, onOverflow: vi.fn() });
    const written: number[] = [];
    let room = 2;
    outbox.writeDirectly((d) => {
      if (room === 0) return false;
      room--;
      written.push((d.result.data as { n: number }).n);
      return true;
    });
    outbox.offer(delivery(0)); // no reader waiting yet: queued, not written
    expect(await take(outbox, 1)).toEqual([{ n: 0 }]);
    const reading = outbox.next();
    outbox.offer(delivery(1));
    outbox.offer(delivery(2));
    outbox.offer(delivery(3)); // the writer is full: handed to the waiting reader
    outbox.offer(delivery(4)); // the reader is busy: queued behind 3
    room = 5;
    outbox.offer(delivery(5)); // still queued: the writer must not overtake 4
    expect(written).toEqual([1, 2]);
    expect(((await reading).value as Delivery).result.data).toEqual({ n: 3 });
    expect(await take(outbox, 2)).toEqual([{ n: 4 }, { n: 5 }]);
    const waiting = outbox.next();
    outbox.offer(delivery(6)); // idle again: written directly
    expect(written).toEqual([1, 2, 6]);
    outbox.close();
    expect((await waiting).done).toBe(true);
  });

  it('conflates a key to its latest value, moved to the end so that cursors only grow, and counts the drop', async () => {
    const onDrop = vi.fn();
    const outbox = new Outbox({ capacity: 4, onOverflow: vi.fn(), onDrop });
    outbox.offer(delivery(1), 'a');
    outbox.offer(delivery(2), 'b');
    outbox.offer(delivery(3), 'a');
    expect(outbox.dropped).toBe(1);
    expect(onDrop).toHaveBeenCalledTimes(1);
    expect(await take(outbox, 2)).toEqual([{ n: 2 }, { n: 3 }]);
  });

  it('overflows past its capacity instead of growing, and never slows the producer', () => {
    const onOverflow = vi.fn();
    const outbox = new Outbox({ capacity: 2, onOverflow });
    outbox.offer(delivery(1));
    outbox.offer(delivery(2));
    expect(onOverflow).not.toHaveBeenCalled();
    outbox.offer(delivery(3));
    expect(onOverflow).toHaveBeenCalledTimes(1);
    expect(outbox.size).toBe(2);
  });

  it('paces a replay: push waits for room and drops nothing', async () => {
    const outbox = new Outbox({ capacity: 4, onOverflow: vi.fn() });
    let pushed = 0;
    const producer = (async () => {
      for (let n = 1; n <= 10; n++) {
        await outbox.push(delivery(n));
        pushed = n;
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pushed).toBeLessThan(10);
    expect(await take(outbox, 10)).toEqual(Array.from({ length: 10 }, (_, i) => ({ n: i + 1 })));
    await producer;
  });

  it('finishes after what is queued, closes at once, and reports its end once', async () => {
    const onClose = vi.fn();
    const finishing = new Outbox({ capacity: 4, onOverflow: vi.fn(), onClose });
    finishing.offer(delivery(1));
    finishing.finish();
    finishing.offer(delivery(2));
    expect(await take(finishing, 1)).toEqual([{ n: 1 }]);
    expect((await finishing.next()).done).toBe(true);
    await finishing.return();
    expect(onClose).toHaveBeenCalledTimes(1);

    const closing = new Outbox({ capacity: 4, onOverflow: vi.fn() });
    closing.offer(delivery(1));
    const waiting = new Outbox({ capacity: 4, onOverflow: vi.fn() });
    const pending = waiting.next();
    closing.close();
    waiting.close();
    expect((await closing.next()).done).toBe(true);
    expect((await pending).done).toBe(true);
  });
});
