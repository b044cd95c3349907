import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken } from '../lib/auth.ts';
import { MAX_BATCH_EVENTS, validateEvents, type EventRejection, type ValidEvent } from '../lib/events.ts';
import type { Logger } from '../lib/logger.ts';
import { HttpRefusal, readBody, refuse } from '../lib/httpRefusal.ts';

/** The operation every batch is forwarded as, so POST /events obeys exactly the rules of ingestEvents. */
export const INGEST_MUTATION =
  'mutation Ingest($events: [EventInput!]!) { ingestEvents(events: $events) { accepted duplicates rejected { index message } } }';

// Never leaves the process: yoga.fetch answers it in memory.
const GRAPHQL_URL = 'http://gateway.internal/graphql';

const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/jsonl']);

// GraphQL codes that keep a status of their own; any other code means the platform failed the batch: 502.
const STATUS_OF_CODE: Record<string, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BAD_USER_INPUT: 400,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
};

/** Options of the batch ingestion endpoint. */
export interface IngestEndpointOptions {
  /** The gateway's yoga instance: batches go through it in-process, auth, roles and tenancy included. */
  yoga: { fetch(url: string, init: RequestInit): Response | Promise<Response> };
  logger: Logger;
  /** Bodies larger than this are refused with 413 before they are parsed. */
  maxBodyBytes: number;
}

/** The answer to a batch that was taken in (HTTP 200), indices counted in the body as sent. */
export interface IngestOutcome {
  accepted: number;
  duplicates: number;
  rejected: EventRejection[];
}

/** The body's events, each with its index in the batch, and the NDJSON lines that did not parse. */
interface ParsedBatch {
  items: Array<{ index: number; value: unknown }>;
  rejected: EventRejection[];
  size: number;
}

/** What the in-process GraphQL call answers (trusted: it is our own gateway). */
interface GraphQLAnswer {
  data?: { ingestEvents?: IngestOutcome | null } | null;
  errors?: Array<{
    message: string;
    extensions?: {
      code?: unknown;
      response?: { status?: number; body?: { errors?: Array<{ extensions?: { code?: unknown } }> } };
    };
  }>;
}

/** Builds the POST /events handler: a JSON or NDJSON batch of events, ingested as the ingestEvents mutation. */
export function createIngestEndpoint(
  options: IngestEndpointOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { logger, maxBodyBytes } = options;

  async function ingest(req: IncomingMessage, requestId: string): Promise<IngestOutcome> {
    if (req.method !== 'POST') {
      throw refuse('METHOD_NOT_ALLOWED', `expected POST, but got ${req.method}`, { allow: 'POST' });
    }
    const authorization = req.headers.authorization;
    if (!authorization || !bearerToken(authorization)) {
      throw refuse('UNAUTHENTICATED', 'authentication required: send Authorization: Bearer <token>', {
        'www-authenticate': 'Bearer',
      });
    }
    const format = bodyFormatOf(req.headers);
    const text = (await readBody(req, maxBodyBytes)).toString('utf8');
    const batch = format === 'ndjson' ? parseNdjsonBatch(text) : parseJsonBatch(text);
    if (batch.size > MAX_BATCH_EVENTS) {
      throw refuse(
        'PAYLOAD_TOO_LARGE',
        `expected at most ${MAX_BATCH_EVENTS} events per batch, but got ${batch.size}`,
        { connection: 'close' },
      );
    }
    const checked = validateEvents(batch.items.map((item) => item.value));
    const valid = checked.valid.map(({ index, event }) => ({ index: batch.items[index]!.index, event }));
    const rejected = batch.rejected.concat(
      checked.rejected.map(({ index, message }) => ({ index: batch.items[index]!.index, message })),
    );
    // Forwarded even when empty: the platform still checks the token and the role of the caller.
    const result = await forward(
      valid.map(({ event }) => event),
      authorization,
      requestId,
    );
    for (const { index, message } of result.rejected) {
      const original = valid[index]?.index;
      if (original === undefined) {
        throw new Error(`ingestEvents rejected index ${index} of a batch of ${valid.length}`);
      }
      rejected.push({ index: original, message });
    }
    return { accepted: result.accepted, duplicates: result.duplicates, rejected: byIndex(rejected) };
  }

  async function forward(events: ValidEvent[], authorization: string, requestId: string) {
    let response: Response;
    let answer: GraphQLAnswer | undefined;
    try {
      response = await options.yoga.fetch(GRAPHQL_URL, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json', 'x-request-id': requestId },
        body: JSON.stringify({ query: INGEST_MUTATION, variables: { events: events.map(toEventInput) } }),
      });
    } catch (error) {
      throw refuse('SERVICE_UNAVAILABLE', `the gateway did not answer: ${(error as Error).message}`);
    }
    try {
      answer = (await response.json()) as GraphQLAnswer;
    } catch {
      // Answered below from the HTTP status alone.
    }
    const outcome = answer?.data?.ingestEvents;
    if (outcome) return outcome;
    throw refusalOf(response, answer);
  }

  return (req, res) => {
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && header ? header : randomUUID();
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      if (res.headersSent || res.destroyed) return;
      res
        .writeHead(status, {
          'content-type': 'application/json; charset=utf-8',
          'x-request-id': requestId,
          ...headers,
        })
        .end(JSON.stringify(body));
    };
    void ingest(req, requestId).then(
      (outcome) => reply(200, outcome),
      (error: unknown) => {
        if (!(error instanceof HttpRefusal)) {
          logger.error({ err: error, requestId }, 'POST /events failed');
          reply(500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'internal error' } });
          return;
        }
        if (error.status >= 500) {
          logger.warn(
            { requestId, code: error.code, reason: error.message },
            'POST /events refused upstream',
          );
        }
        reply(error.status, { error: { code: error.code, message: error.message } }, error.headers);
      },
    );
  };
}

/** Which parser the Content-Type asks for; anything else is 415. */
function bodyFormatOf(headers: IncomingHttpHeaders): 'json' | 'ndjson' {
  const encoding = headers['content-encoding']?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    throw refuse(
      'UNSUPPORTED_MEDIA_TYPE',
      `expected an uncompressed body, but got Content-Encoding ${encoding}`,
    );
  }
  const mediaType = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType === 'application/json') return 'json';
  if (NDJSON_TYPES.has(mediaType)) return 'ndjson';
  throw refuse(
    'UNSUPPORTED_MEDIA_TYPE',
    `expected Content-Type application/json, application/x-ndjson or application/jsonl, but got ${mediaType || 'none'}`,
  );
}

/** A JSON body: an array of events or `{ "events": [...] }`; invalid JSON refuses the whole batch. */
function parseJsonBatch(text: string): ParsedBatch {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw refuse('BAD_REQUEST', `invalid JSON body: ${describeJsonError(text, error)}`);
  }
  const events: unknown[] | undefined = Array.isArray(body)
    ? body
    : isObject(body) && Array.isArray(body['events'])
      ? (body['events'] as unknown[])
      : undefined;
  if (!events) {
    const got = body === null ? 'null' : isObject(body) ? 'an object without an "events" array' : typeof body;
    throw refuse('BAD_REQUEST', `expected a JSON array of events or { "events": [...] }, but got ${got}`);
  }
  return { items: events.map((value, index) => ({ index, value })), rejected: [], size: events.length };
}

/** An NDJSON body: one event per non-blank line; a line that does not parse rejects that event only. */
function parseNdjsonBatch(text: string): ParsedBatch {
  const batch: ParsedBatch = { items: [], rejected: [], size: 0 };
  text.split('\n').forEach((line, lineIndex) => {
    if (!line.trim()) return;
    const index = batch.size++;
    try {
      batch.items.push({ index, value: JSON.parse(line) });
    } catch (error) {
      const message = `line ${lineIndex + 1}: invalid JSON: ${describeJsonError(line, error)}`;
      batch.rejected.push({ index, message });
    }
  });
  return batch;
}

/** V8's JSON.parse message, with the position added where V8 leaves it out. */
function describeJsonError(text: string, error: unknown): string {
  const message = (error as Error).message;
  return /at position \d+/.test(message) ? message : `${message} at position ${syntaxErrorPosition(text)}`;
}

/** The offset of the first character no JSON document could continue with (text.length if it is cut short). */
function syntaxErrorPosition(text: string): number {
  // A prefix that stops before the error fails only at its own end ("Unexpected end", or a position
  // equal to its length); bisect for the longest such prefix. Only run on bodies that failed to parse.
  const failsBeforeEnd = (prefix: string) => {
    try {
      JSON.parse(prefix);
      return false;
    } catch (error) {
      const message = (error as Error).message;
      if (message.startsWith('Unexpected end of JSON input')) return false;
      const position = /at position (\d+)/.exec(message)?.[1];
      return position === undefined || Number(position) < prefix.length;
    }
  };
  let low = 0;
  let high = text.length;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (failsBeforeEnd(text.slice(0, middle))) high = middle - 1;
    else low = middle;
  }
  return low;
}

/** The EventInput the GraphQL API takes, from a validated event. */
function toEventInput(event: ValidEvent) {
  const { id, type, name, source, timestamp, attributes, metadata, version } = event;
  return { id, type, name, source, timestamp: timestamp.toISOString(), attributes, metadata, version };
}

/** Maps a GraphQL answer without an ingest result to the HTTP refusal it stands for. */
function refusalOf(response: Response, answer: GraphQLAnswer | undefined): HttpRefusal {
  const retryAfter = response.headers.get('retry-after');
  const headers: Record<string, string> = retryAfter ? { 'retry-after': retryAfter } : {};
  const error = answer?.errors?.[0];
  if (!error) {
    const message = `the gateway answered HTTP ${response.status} without an ingest result`;
    return response.status >= 500
      ? new HttpRefusal(503, 'SERVICE_UNAVAILABLE', message, headers)
      : new HttpRefusal(502, 'INTERNAL_SERVER_ERROR', message, headers);
  }
  const code = codeOf(error);
  return new HttpRefusal(STATUS_OF_CODE[code] ?? 502, code, error.message, headers);
}

/** The error's code; a subgraph that failed without one is an upstream failure, SERVICE_UNAVAILABLE. */
function codeOf(error: NonNullable<GraphQLAnswer['errors']>[number]): string {
  const { code, response } = error.extensions ?? {};
  if (typeof code === 'string') return code;
  // A refusal may carry the HTTP answer that caused it (status and body) rather than a code of its own.
  const inner = response?.body?.errors?.[0]?.extensions?.code;
  if (typeof inner === 'string') return inner;
  // What is left is a subgraph fetch that failed outright: refused, reset or timed out.
  return 'SERVICE_UNAVAILABLE';
}

function byIndex(rejected: EventRejection[]): EventRejection[] {
  return rejected.sort((a, b) => a.index - b.index);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
