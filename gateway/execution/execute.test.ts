// A shaped result whose bytes were lent by an HTTP answer's body buffers: served as they are until the
// answer has finished, then gone (read before, or refused loudly; never another answer's bytes).
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { buildSchema, parse, type ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import { shapeResponse, type ShapedResult } from './execute.ts';
import { bodyBuffersFor, BufferPool } from './responseBuffers.ts';

const schema = buildSchema(`type Item { id: ID! name: String } type Query { items: [Item!]! }`);
const document = parse('{ items { id name } }');
/** Merged subgraph data of about 60 KB: its body is pooled. */
const items = Array.from({ length: 1000 }, (_, i) => ({
  id: String(i),
  name: `item number ${i} of the list`,
}));

function shaped(pool: BufferPool, res: ServerResponse): ShapedResult {
  const body = bodyBuffersFor(res, pool);
  return shapeResponse(schema, document, null, {}, { items }, [], body) as ShapedResult;
}

describe('a result written into an HTTP answer body buffer', () => {
  it('is its bytes until the answer finishes; then its data is gone unless read before', () => {
    const pool = new BufferPool();
    const res = new EventEmitter() as unknown as ServerResponse;
    const sent = shaped(pool, res);
    const read = shaped(pool, res);
    const expected = JSON.stringify({ data: { items } });
    expect(sent.stringify().toString('utf8')).toBe(expected);
    expect((read.data as { items: unknown[] }).items).toHaveLength(1000);
    res.emit('finish');
    expect(pool.keptBytes).toBe(2 * 64 * 1024);
    expect(() => sent.data).toThrow(/sent and its bytes reused/);
    expect(() => sent.stringify()).toThrow(/sent and its bytes reused/);
    expect(read.data).toEqual({ items });
    // The next answer gets the same memory, and its own bytes.
    const next = shaped(pool, new EventEmitter() as unknown as ServerResponse);
    expect(next.stringify().toString('utf8')).toBe(expected);
    const withErrors: ExecutionResult = { ...next, extensions: { cost: 3 } };
    expect(JSON.parse(next.stringify(withErrors).toString('utf8'))).toEqual({
      data: { items },
      extensions: { cost: 3 },
    });
  });
});
