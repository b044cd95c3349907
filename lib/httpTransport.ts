// GraphQL over HTTP (POST and GET /graphql) through yoga, in the gateway and every subgraph, behind the
// request limits: the body size (413) and the URL length of a GET (414), both refused before a byte of
// GraphQL is parsed. Yoga's own body limit is off behind it (`maxRequestBodySize: false`): it pipes every
// body through a TransformStream, whose pipeline ends by aborting a signal, a DOMException per request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpRefusal, readBody, refuse } from './httpRefusal.ts';

/** The part of a yoga server (the gateway's or a subgraph's) this adapter calls. */
interface YogaHandler {
  (
    req: IncomingMessage,
    res: ServerResponse,
    context: { req: IncomingMessage; res: ServerResponse },
  ): unknown;
  fetch(
    url: string,
    init: RequestInit,
    context: { req: IncomingMessage; res: ServerResponse },
  ): Response | Promise<Response>;
}

/** Options of the HTTP transport. */
export interface HttpTransportOptions {
  yoga: YogaHandler;
  /** Largest request body (the gateway: MAX_BODY_BYTES, 1 MiB by default; a subgraph: 25 MB). */
  maxBodyBytes: number;
  /** Longest request URL of a GET (MAX_URL_BYTES). */
  maxUrlBytes: number;
}

/** Builds the handler of /graphql for plain HTTP requests (SSE and WebSocket have their own). */
export function createHttpTransport(options: HttpTransportOptions) {
  const { yoga } = options;

  async function viaBuffer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, options.maxBodyBytes);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers.set(name, value);
      else if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    }
    headers.delete('transfer-encoding');
    const url = `http://${req.headers.host ?? 'gateway'}${req.url ?? '/graphql'}`;
    const response = await yoga.fetch(
      url,
      { method: req.method, headers, body: new Uint8Array(body) },
      { req, res },
    );
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  }

  return function serveHttp(req: IncomingMessage, res: ServerResponse): void {
    try {
      if ((req.url ?? '').length > options.maxUrlBytes) {
        throw refuse(
          'URI_TOO_LONG',
          `expected a request URL of at most ${options.maxUrlBytes} bytes, but got ${req.url!.length}: send long operations with POST`,
        );
      }
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > options.maxBodyBytes) {
        throw refuse(
          'PAYLOAD_TOO_LARGE',
          `expected a body of at most ${options.maxBodyBytes} bytes, but Content-Length is ${declared}`,
          { connection: 'close' },
        );
      }
      // A body of declared length (nearly every client) streams into yoga as it is; a chunked one is
      // read here under the limit first, since its size is only known at the end.
      if (declared !== undefined || req.headers['transfer-encoding'] === undefined) {
        void yoga(req, res, { req, res });
        return;
      }
      viaBuffer(req, res).catch((error: unknown) => answer(res, error));
    } catch (error) {
      answer(res, error);
    }
  };
}

/** Answers a refusal as a GraphQL response body with the refusal's status. */
function answer(res: ServerResponse, error: unknown): void {
  const refusal = error instanceof HttpRefusal ? error : refuse('BAD_REQUEST', (error as Error).message);
  if (res.headersSent) return void res.destroy();
  res
    .writeHead(refusal.status, { 'content-type': 'application/json; charset=utf-8', ...refusal.headers })
    .end(JSON.stringify({ errors: [{ message: refusal.message, extensions: { code: refusal.code } }] }));
}
