// GraphQL over Server-Sent Events (graphql-sse's "distinct connections" mode) on /graphql: a request
// with `Accept: text/event-stream` gets `next` events and a final `complete`, except when the gateway
// shuts down or the reader is too slow. Results that have a cursor carry it as the event id, so a
// reconnecting EventSource resumes via Last-Event-ID.
import type { GraphQLError } from 'graphql';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { bearerToken, type TokenVerifier } from '../../lib/auth.ts';
import { ErrorCode, errorCodeOf } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Gateway } from '../gateway.ts';
import { HttpRefusal, readBody } from '../../lib/httpRefusal.ts';
import type { Delivery } from '../subscriptions/outbox.ts';
import {
  admitOperation,
  prepareOperation,
  runOperation,
  type OperationPayload,
  type PreparedOperation,
} from './operations.ts';

const KEEP_ALIVE_MS = 12_000;

/** Whether a request asks for an event stream (and so is this transport's). */
export function wantsEventStream(request: IncomingMessage): boolean {
  return (request.headers.accept ?? '').includes('text/event-stream');
}

/** Serves one SSE request. */
export function createSseHandler(options: {
  gateway: Gateway;
  verifier: TokenVerifier;
  logger: Logger;
  maxBodyBytes: number;
}) {
  const { gateway } = options;
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    let payload: OperationPayload;
    try {
      payload = await readPayload(request, options.maxBodyBytes);
    } catch (error) {
      // An oversized body is a 413 (readBody's refusal); anything else unreadable is a 400.
      const status = error instanceof HttpRefusal ? error.status : 400;
      const code = error instanceof HttpRefusal ? error.code : 'BAD_REQUEST';
      return refuse(response, status, [{ message: (error as Error).message, extensions: { code } }]);
    }
    const authorization = request.headers.authorization;
    const token = bearerToken(authorization);
    let principal;
    try {
      if (!token) throw new Error('authentication required: send Authorization: Bearer <token>');
      principal = await options.verifier.verify(token);
    } catch (error) {
      return refuse(response, 401, [
        { message: (error as Error).message, extensions: { code: 'UNAUTHENTICATED' } },
      ]);
    }
    const prepared = await prepareOperation(gateway, payload, principal);
    if (Array.isArray(prepared)) {
      const errors = prepared as readonly GraphQLError[];
      return refuse(
        response,
        ErrorCode[errorCodeOf(errors[0]) ?? 'BAD_REQUEST'],
        errors.map((e) => e.toJSON()),
      );
    }
    const limited = await admitOperation(gateway, prepared as PreparedOperation, payload, principal);
    if (limited) {
      const retryAfter = String(limited.extensions['retryAfter']);
      return refuse(response, ErrorCode.RATE_LIMITED, [limited.toJSON()], { 'retry-after': retryAfter });
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    response.flushHeaders();
    let ended = false;
    const outcome = await runOperation(
      gateway,
      {
        ...(prepared as Exclude<typeof prepared, readonly GraphQLError[]>),
        variables: payload.variables,
        operationName: payload.operationName,
      },
      {
        principal,
        caller: {
          authorization: `Bearer ${token}`,
          requestId: request.headers['x-request-id'] as string | undefined,
        },
        transport: 'sse',
        resumeAfter: header(request, 'last-event-id'),
        onOverflow: () => finish(undefined, true),
      },
    );
    // A stream ended by the gateway's shutdown, or for a reader too slow, ends without `complete`: an
    // EventSource (or graphql-sse client) reconnects with Last-Event-ID and resumes from there.
    const finish = (last?: string, resumable = false) => {
      if (ended) return;
      ended = true;
      clearInterval(keepAlive);
      clearTimeout(expiry);
      if (last && !response.destroyed) response.write(last);
      if (response.destroyed) return;
      if (resumable) response.end(': going away: reconnect with Last-Event-ID to resume\n\n');
      else response.end('event: complete\ndata:\n\n');
    };
    const keepAlive = setInterval(() => response.write(':\n\n'), KEEP_ALIVE_MS);
    const untilExpiry = (principal.expiresAt ?? Infinity) - Date.now();
    const expiry = setTimeout(
      () => {
        const result = {
          errors: [
            {
              message: 'token expired: reconnect with a fresh token',
              extensions: { code: 'UNAUTHENTICATED' },
            },
          ],
        };
        if (Symbol.asyncIterator in outcome) void (outcome as AsyncIterator<Delivery>).return?.();
        finish(`event: next\ndata: ${JSON.stringify(result)}\n\n`);
      },
      Math.min(Math.max(0, untilExpiry), 2 ** 31 - 1),
    );
    if (!(Symbol.asyncIterator in outcome)) {
      return finish(`event: next\ndata: ${JSON.stringify(outcome)}\n\n`);
    }
    const deliveries = outcome as AsyncIterableIterator<Delivery>;
    response.once('close', () => {
      void deliveries.return?.();
      finish();
    });
    try {
      for await (const delivery of deliveries) {
        if (ended) break;
        const id = delivery.cursor ? `id: ${delivery.cursor}\n` : '';
        if (!response.write(`${id}event: next\ndata: ${delivery.json()}\n\n`)) await once(response, 'drain');
      }
    } catch (error) {
      options.logger.warn({ err: error }, 'sse stream ended');
    } finally {
      finish(undefined, gateway.ending);
    }
  };
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value ? value : undefined;
}

function refuse(
  response: ServerResponse,
  status: number,
  errors: unknown[],
  headers: Record<string, string> = {},
): void {
  response
    .writeHead(status, { 'content-type': 'application/json', ...headers })
    .end(JSON.stringify({ errors }));
}

async function readPayload(request: IncomingMessage, maxBytes: number): Promise<OperationPayload> {
  if (request.method === 'GET') {
    const params = new URL(request.url ?? '/', 'http://gateway').searchParams;
    const variables = params.get('variables');
    const extensions = params.get('extensions');
    return {
      query: params.get('query') ?? '',
      variables: variables ? (JSON.parse(variables) as Record<string, unknown>) : undefined,
      operationName: params.get('operationName'),
      extensions: extensions ? (JSON.parse(extensions) as Record<string, unknown>) : undefined,
      documentId: params.get('documentId'),
    };
  }
  if (request.method !== 'POST') throw new Error('use GET or POST');
  const body = JSON.parse((await readBody(request, maxBytes)).toString('utf8')) as OperationPayload;
  if (!body || typeof body !== 'object') throw new Error('expected a JSON object with a query');
  return body;
}
