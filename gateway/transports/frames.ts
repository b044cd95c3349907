// The WebSocket frames of subscription results, framed here and written straight to the connection's
// socket. Through `ws`, every `next` of every subscriber was a new string (the id's prefix around the
// shared result), measured again in UTF-8, then a header and that string written corked: two writes, one
// writev. Here the result is encoded once per delivery and each subscriber's frame is one Buffer (header,
// the subscription's prefix, the result) in one write; a large result is not copied per subscriber but
// written after its header in the same corked write. Server frames are unmasked (RFC 6455, section 5.1).
import type { Duplex } from 'node:stream';
import type { Delivery } from '../subscriptions/outbox.ts';

const FIN_TEXT = 0x81;
/** Frames up to this size are copied into one Buffer (Node's pool serves those below it); larger ones
 * are written as their header and the result's shared bytes. */
const COPY_LIMIT = 4096;

/** The result of a delivery as the end of a `next` message (`<result>}`), encoded once for every subscriber. */
const encoded = new WeakMap<Delivery, Buffer>();

function resultBytes(delivery: Delivery): Buffer {
  let bytes = encoded.get(delivery);
  if (!bytes) encoded.set(delivery, (bytes = Buffer.from(`${delivery.json()}}`)));
  return bytes;
}

/** The length of the header of an unmasked frame with `length` bytes of payload. */
const headerLength = (length: number) => (length < 126 ? 2 : length < 65_536 ? 4 : 10);

/** Writes the header of an unmasked, final text frame of `length` bytes into `target`. */
function writeHeader(target: Buffer, length: number): void {
  target[0] = FIN_TEXT;
  if (length < 126) target[1] = length;
  else if (length < 65_536) {
    target[1] = 126;
    target.writeUInt16BE(length, 2);
  } else {
    target[1] = 127;
    target.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    target.writeUInt32BE(length >>> 0, 6);
  }
}

/** The bytes before the result in a subscription's `next` frames: `{"id":...,"type":"next","payload":`. */
export function nextPrefix(id: string): Buffer {
  return Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`);
}

/**
 * Writes a `next` message of `delivery` to `stream` as one text frame; `written` is called once the
 * socket has taken it (or failed). The caller keeps to the connection's order: nothing else may be
 * writing to it through `ws` at the same time, which holds without permessage-deflate (`ws` writes each
 * message at once then).
 */
export function writeNextFrame(
  stream: Duplex,
  prefix: Buffer,
  delivery: Delivery,
  written: (error?: Error | null) => void,
): void {
  const result = resultBytes(delivery);
  const length = prefix.length + result.length;
  const header = headerLength(length);
  if (header + length <= COPY_LIMIT) {
    const frame = Buffer.allocUnsafe(header + length);
    writeHeader(frame, length);
    // TypedArray set: Buffer's copy() makes a view of its source first, per call.
    frame.set(prefix, header);
    frame.set(result, header + prefix.length);
    stream.write(frame, written);
    return;
  }
  const head = Buffer.allocUnsafe(header + prefix.length);
  writeHeader(head, length);
  head.set(prefix, header);
  stream.cork();
  stream.write(head);
  stream.write(result, written);
  stream.uncork();
}
