import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { eachLine } from './childProcesses.ts';

describe('eachLine', () => {
  it('gives each line whole, however the chunks split it, and the last one at the end', async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    eachLine(stream, (line) => lines.push(line));
    const text = Buffer.from('{"urls":"a"}\nlistening 4000\nnaïve €\nlast');
    // Split inside the JSON line, right after a newline, and inside the two-byte ï and three-byte €.
    const cuts = [5, 13, 31, 36, text.length];
    let from = 0;
    for (const to of cuts) {
      stream.write(text.subarray(from, to));
      from = to;
    }
    await turn();
    expect(lines).toEqual(['{"urls":"a"}', 'listening 4000', 'naïve €']);
    const ended = once(stream, 'end');
    stream.end();
    await ended;
    expect(lines).toEqual(['{"urls":"a"}', 'listening 4000', 'naïve €', 'last']);
  });

  it('stops calling back once stopped', async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    const stop = eachLine(stream, (line) => lines.push(line));
    stream.write('one\n');
    await turn();
    stop();
    stream.resume(); // nobody reads any more: let the rest flow past
    stream.write('two\n');
    const ended = once(stream, 'end');
    stream.end('three');
    await ended;
    expect(lines).toEqual(['one']);
  });
});
