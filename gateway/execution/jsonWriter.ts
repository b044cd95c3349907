// Writes JSON text as UTF-8 bytes into one scratch buffer that grows as needed and is reused by every
// response (shaping is synchronous: one response at a time per process). Building a response this way
// allocates one Buffer of its exact size, where string concatenation allocated a rope of small strings,
// flattened it, then encoded it again for the socket.

/** Characters a JSON string may not hold as they are, and any that is not one byte in UTF-8. */
// eslint-disable-next-line no-control-regex -- control characters are what it must find
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\u0080-\uffff]/;
/** Strings this long or longer are checked by the regex and copied natively; shorter ones byte by byte. */
const NATIVE_FROM = 32;
const INITIAL_BYTES = 64 * 1024;
/** A scratch buffer grown past this is dropped after its response, not kept for the next ones. */
const KEEP_AT_MOST = 1024 * 1024;
const allocateFresh = (size: number): Buffer => Buffer.allocUnsafe(size);

/** A JSON writer over a reused scratch buffer; `take` returns what was written as a Buffer of its own. */
export class JsonWriter {
  #buffer = Buffer.allocUnsafe(INITIAL_BYTES);
  /** Bytes written so far. */
  at = 0;

  /** Starts a new document. */
  reset(): void {
    this.at = 0;
  }

  /** Text known to be ASCII and valid JSON as it is (punctuation, `"name":` prefixes, numbers, null). */
  raw(text: string): void {
    const length = text.length;
    this.#reserve(length);
    const buffer = this.#buffer;
    let at = this.at;
    for (let i = 0; i < length; i++) buffer[at++] = text.charCodeAt(i);
    this.at = at;
  }

  /** One ASCII character by its code. */
  byte(code: number): void {
    this.#reserve(1);
    this.#buffer[this.at++] = code;
  }

  /** A JSON string literal of `text`, escaped as JSON.stringify escapes it. */
  string(text: string): void {
    const length = text.length;
    if (length >= NATIVE_FROM) {
      if (NEEDS_ESCAPE.test(text)) return this.utf8(JSON.stringify(text));
      this.#reserve(length + 2);
      const buffer = this.#buffer;
      buffer[this.at] = 34;
      this.at += 1 + buffer.write(text, this.at + 1, 'latin1');
      buffer[this.at++] = 34;
      return;
    }
    this.#reserve(length + 2);
    const buffer = this.#buffer;
    const start = this.at;
    let at = start;
    buffer[at++] = 34;
    for (let i = 0; i < length; i++) {
      const code = text.charCodeAt(i);
      if (code < 32 || code === 34 || code === 92 || code > 127) {
        this.at = start;
        return this.utf8(JSON.stringify(text));
      }
      buffer[at++] = code;
    }
    buffer[at++] = 34;
    this.at = at;
  }

  /** Any JSON value, by JSON.stringify (null when it has no JSON form). */
  json(value: unknown): void {
    this.utf8(JSON.stringify(value) ?? 'null');
  }

  /** Text that is valid JSON as it is, in any characters. */
  utf8(text: string): void {
    this.#reserve(text.length * 3);
    this.at += this.#buffer.write(text, this.at, 'utf8');
  }

  /**
   * What was written, as a Buffer of its own (from `allocate`, given the size); the scratch buffer is free
   * for the next document.
   */
  take(allocate: (size: number) => Buffer = allocateFresh): Buffer {
    const out = allocate(this.at);
    this.#buffer.copy(out, 0, 0, this.at);
    this.at = 0;
    if (this.#buffer.length > KEEP_AT_MOST) this.#buffer = Buffer.allocUnsafe(INITIAL_BYTES);
    return out;
  }

  #reserve(bytes: number): void {
    if (this.at + bytes <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < this.at + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.#buffer.copy(grown, 0, 0, this.at);
    this.#buffer = grown;
  }
}
