// What the platform's HTTP endpoints (GraphQL over HTTP in the gateway and the subgraphs, POST /events,
// report downloads, SSE) share: a refusal of the whole request with its status and headers, and reading a
// request body under a size limit.
import type { IncomingMessage } from 'node:http';
import { ErrorCode, type ErrorCodeName } from './errors.ts';

/** A refusal of the whole request; each endpoint answers it in its own body format. */
export class HttpRefusal extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** A refusal with a platform code and the code's HTTP status. */
export const refuse = (code: ErrorCodeName, message: string, headers?: Record<string, string>) =>
  new HttpRefusal(ErrorCode[code], code, message, headers);

// The rest of an oversized body is never read: the connection closes once the 413 is out.
const tooLarge = (message: string) => refuse('PAYLOAD_TOO_LARGE', message, { connection: 'close' });

/** Reads the whole body, refusing it with 413 as soon as it is known to exceed maxBytes. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  const limit = `expected a body of at most ${maxBytes} bytes`;
  if (declared > maxBytes) return Promise.reject(tooLarge(`${limit}, but Content-Length is ${declared}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      // Chunked bodies announce no length: stop reading at the limit rather than buffer the rest.
      req.off('data', onData).pause();
      reject(tooLarge(`${limit}, but got more`));
    };
    req
      .on('data', onData)
      .once('end', () => resolve(Buffer.concat(chunks)))
      // The client went away mid-body: nobody reads the answer, so no error is logged for it.
      .once('error', (error) => reject(refuse('BAD_REQUEST', `the body was cut short: ${error.message}`)));
  });
}
