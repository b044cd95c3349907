// One POST to a subgraph over undici's dispatcher, read into a string: the leanest exchange undici offers.
// Its `request()` wraps every answer in a Readable stream with listeners and a consume promise; at a steady
// rate those objects (and the answer text they held) outlived their request often enough to survive two
// young-generation collections and be promoted, and copying them made each collection 4 to 25 ms long. With
// a plain handler an answer's bytes and text die young (docs/performance.md, "Young-generation pauses").
import type { Dispatcher } from 'undici';
import { responseBodyPool } from './responseBuffers.ts';

/** A subgraph's HTTP answer: its status and its body as text. */
export interface HttpAnswer {
  status: number;
  text: string;
}

/**
 * The largest answer read (256 MiB): a subgraph that sends more fails its fetch instead of filling the
 * gateway's memory, and an answer stays well below the longest string V8 can make (about 512 MiB).
 */
export const MAX_ANSWER_BYTES = 256 * 2 ** 20;

/** Where a URL's requests go: the origin a dispatcher routes by, and the path. */
const targets = new Map<string, { origin: string; path: string }>();

function targetOf(url: string): { origin: string; path: string } {
  let target = targets.get(url);
  if (!target) {
    const parsed = new URL(url);
    targets.set(url, (target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` }));
  }
  return target;
}

/**
 * The UTF-8 text of an answer's chunks (`bytes` in all), joined in a buffer of the process's pool and given
 * back at once, not in a new one each time: a new buffer of 32 KiB or more is a fresh mapping whose pages
 * the system faults in one by one as the chunks are copied (responseBuffers.ts tells what that costs).
 */
function textOf(chunks: readonly Buffer[], bytes: number): string {
  const joined = responseBodyPool.acquire(bytes);
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(joined, at);
  const text = joined.toString('utf8', 0, at);
  responseBodyPool.release(joined);
  return text;
}

/**
 * POSTs `body` to `url` through `dispatcher` and resolves with the answer, whatever its status. It rejects
 * with undici's error when the exchange fails (refused connection, reset socket, headers or body too slow
 * for `timeoutMs`), and with a `TimeoutError` DOMException when the whole exchange takes longer than
 * `timeoutMs`, or with an Error when the answer is longer than `maxBytes`.
 */
export function postText(
  dispatcher: Dispatcher,
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  maxBytes = MAX_ANSWER_BYTES,
): Promise<HttpAnswer> {
  const { origin, path } = targetOf(url);
  return new Promise<HttpAnswer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let status = 0;
    let controller: Dispatcher.DispatchController | undefined;
    let expired: Error | undefined;
    // A deadline for the whole exchange. It can fire while the request still waits for a connection,
    // before undici hands over its controller: the fetch fails then, and the request is aborted as soon
    // as it starts.
    const deadline = setTimeout(() => {
      expired = new DOMException('subgraph timeout', 'TimeoutError');
      if (controller) controller.abort(expired);
      else reject(expired);
    }, timeoutMs);
    const settle = (error: Error | undefined): void => {
      clearTimeout(deadline);
      if (error) reject(error);
      else
        resolve({
          status,
          text: chunks.length === 1 ? chunks[0]!.toString('utf8') : textOf(chunks, received),
        });
    };
    const options = {
      origin,
      path,
      method: 'POST' as const,
      headers,
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    };
    try {
      dispatcher.dispatch(options, {
        onRequestStart(started) {
          controller = started;
          if (expired) started.abort(expired);
        },
        onResponseStart(_controller, statusCode) {
          status = statusCode;
        },
        onResponseData(receiving, chunk) {
          received += chunk.length;
          if (received > maxBytes) {
            receiving.abort(new Error(`answered more than ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        },
        onResponseEnd() {
          settle(undefined);
        },
        onResponseError(_controller, error) {
          settle(error);
        },
      });
    } catch (error) {
      settle(error as Error);
    }
  });
}
