// The JSON writer against JSON.stringify: every kind of string (short and long, ASCII, escapes, non-Latin,
// lone surrogates), documents larger than the scratch buffer, and rewinding.
import { describe, expect, it } from 'vitest';
import { JsonWriter } from './jsonWriter.ts';

const STRINGS = [
  '',
  'a',
  'plain ascii',
  'x'.repeat(31),
  'y'.repeat(32),
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor',
  'quote " and backslash \\ short',
  `quote " and backslash \\ in a string longer than the native threshold`,
  'tab\tnew\nline\u0000nul\u001f',
  'del \u007f',
  'é',
  'Zürich, Straße, €42.50 and more text past the threshold',
  '日本語',
  '😀 emoji',
  'lone \ud800 surrogate',
  'lone \udc00 surrogate in a string that is longer than thirty-two characters',
];

describe('JsonWriter', () => {
  it('writes strings byte for byte as JSON.stringify does', () => {
    const writer = new JsonWriter();
    for (const text of STRINGS) {
      writer.string(text);
      expect(writer.take().toString('utf8')).toBe(JSON.stringify(text));
    }
  });

  it('writes documents larger than its scratch buffer, and is reused after', () => {
    const writer = new JsonWriter();
    const value = Array.from({ length: 5_000 }, (_, i) => ({
      id: String(i),
      body: STRINGS[i % STRINGS.length],
    }));
    writer.byte(91);
    value.forEach((item, i) => {
      if (i > 0) writer.byte(44);
      writer.raw('{"id":');
      writer.string(item.id);
      writer.raw(',"body":');
      writer.string(item.body!);
      writer.byte(125);
    });
    writer.byte(93);
    const big = writer.take();
    expect(big.length).toBeGreaterThan(64 * 1024);
    expect(big.toString('utf8')).toBe(JSON.stringify(value));
    writer.json({ after: [1, 2.5, null, true] });
    expect(writer.take().toString('utf8')).toBe('{"after":[1,2.5,null,true]}');
  });

  it('forgets what it wrote past a rewind', () => {
    const writer = new JsonWriter();
    writer.raw('[1,');
    const at = writer.at;
    writer.string('dropped');
    writer.at = at;
    writer.raw('null]');
    expect(writer.take().toString('utf8')).toBe('[1,null]');
  });
});
