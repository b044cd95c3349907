// Persisted operations, transport-free: a request may name its document by id instead of sending its
// text, either a `documentId` (GraphQL-over-HTTP persisted documents proposal) or Apollo's automatic
// persisted queries (APQ, `extensions.persistedQuery`). Ids resolve from the codegen manifest first,
// then from the APQ store; in persisted-only mode only the manifest's operations run, by id or by text.
// The yoga plugin (plugins/usePersistedOperations.ts) and the WebSocket and SSE transports
// (transports/operations.ts) all resolve through PersistedOperations.resolve.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { GraphQLError } from 'graphql';
import { Counter } from 'prom-client';
import { ConfigError, type Config } from '../lib/config.ts';
import { appError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';

/** The persisted-operation manifest: document id (the SHA-256 hex of its text) -> document text. */
export type PersistedManifest = ReadonlyMap<string, string>;

/** Where APQ keeps registered documents by the SHA-256 hex of their text. Failures read as misses. */
export interface ApqStore {
  get(hash: string): Promise<string | undefined>;
  set(hash: string, query: string): Promise<void>;
  close(): Promise<void>;
}

/** What a transport received: the persisted-operation fields of a GraphQL request, unchecked. */
export interface PersistedRequest {
  query?: unknown;
  documentId?: unknown;
  extensions?: unknown;
}

/** A request's document once resolved. */
export interface ResolvedOperation {
  /** The document text to run; undefined when the request named none (the transport's own error follows). */
  query: string | undefined;
  /**
   * Stores an APQ registration; to be called once the document has been validated and the caller
   * authenticated, so that the store only ever holds documents that ran.
   */
  register?: () => Promise<void>;
}

/**
 * Lookups and refusals by outcome: `manifest` (served from the manifest), `apq_hit`, `apq_miss`,
 * `apq_registered`, `apq_too_large` (ran, not stored), `not_allowed` (persisted-only refusal),
 * `not_in_manifest` (persisted-only, unknown id), `hash_mismatch`.
 */
export const persistedOperationMetrics = new Counter({
  name: 'pulsegraph_persisted_operations_total',
  help: 'Persisted-operation (manifest and APQ) lookups, registrations and refusals, by outcome',
  labelNames: ['outcome'] as const,
});

/** The SHA-256 of a document's text (UTF-8), as lowercase hex: its APQ hash and manifest id. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The id without its `sha256:` prefix (the persisted documents proposal's form of a hash id). */
function bareId(id: string): string {
  return id.startsWith('sha256:') ? id.slice('sha256:'.length) : id;
}

/** Parses a manifest's JSON text; throws an Error saying what was expected and what arrived. */
export function parseManifest(json: string): Map<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new Error(`expected JSON, but it does not parse (${(error as Error).message})`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(
      `expected a JSON object of document id -> document text, but got ${Array.isArray(parsed) ? 'an array' : typeof parsed}`,
    );
  }
  const manifest = new Map<string, string>();
  for (const [id, text] of Object.entries(parsed)) {
    if (typeof text !== 'string' || text.trim() === '') {
      throw new Error(`expected the document of id ${JSON.stringify(id)} to be a non-empty string`);
    }
    manifest.set(bareId(id), text);
  }
  return manifest;
}

/**
 * Reads the manifest at `path` at start. Without it the gateway runs with an empty manifest, unless
 * `required` (persisted-only mode), when a missing, unreadable, malformed or empty manifest is a
 * ConfigError; a malformed one always is.
 */
export async function readManifest(path: string, required: boolean): Promise<PersistedManifest> {
  let json: string;
  try {
    json = await readFile(path, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new ConfigError(
      `invalid setting PERSISTED_OPERATIONS_PATH: PERSISTED_ONLY=true needs the persisted-operation ` +
        `manifest (npm run codegen writes it), but ${path} cannot be read ` +
        `(${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  let manifest: Map<string, string>;
  try {
    manifest = parseManifest(json);
  } catch (error) {
    throw new ConfigError(`invalid setting PERSISTED_OPERATIONS_PATH: ${path}: ${(error as Error).message}`);
  }
  if (required && manifest.size === 0) {
    throw new ConfigError(
      `invalid setting PERSISTED_OPERATIONS_PATH: PERSISTED_ONLY=true, but ${path} holds no operation`,
    );
  }
  return manifest;
}

/** An in-memory APQ store: the `maxEntries` most recently used documents, each for `ttlSeconds`. */
export function createMemoryApqStore(options: { ttlSeconds: number; maxEntries?: number }): ApqStore {
  const maxEntries = options.maxEntries ?? 1_000;
  // Map keeps insertion order: re-inserting on a hit makes the first key the least recently used.
  const entries = new Map<string, { query: string; expiresAt: number }>();
  return {
    get(hash) {
      const entry = entries.get(hash);
      entries.delete(hash);
      if (!entry || entry.expiresAt <= Date.now()) return Promise.resolve(undefined);
      entries.set(hash, entry);
      return Promise.resolve(entry.query);
    },
    set(hash, query) {
      entries.delete(hash);
      entries.set(hash, { query, expiresAt: Date.now() + options.ttlSeconds * 1_000 });
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
      return Promise.resolve();
    },
    close() {
      entries.clear();
      return Promise.resolve();
    },
  };
}

/** The Redis key of a registered document. */
export function apqKey(hash: string): string {
  return `apq:${hash}`;
}

/**
 * An APQ store in Redis: keys `apq:<sha256 hex>`, each expiring `ttlSeconds` after its registration,
 * shared by every gateway replica. A lookup is a cache read: when Redis fails or is slow it counts as a
 * miss (logged), and the client sends the text again, rather than holding the request.
 */
export async function createRedisApqStore(options: {
  url: string;
  ttlSeconds: number;
  logger: Logger;
}): Promise<ApqStore> {
  const { logger } = options;
  // Loaded here: a gateway without REDIS_URL never loads ioredis (gateway/server.ts).
  const { Redis } = await import('ioredis');
  const redis = new Redis(options.url, {
    retryStrategy: (attempt) => Math.min(attempt * 250, 5_000),
    maxRetriesPerRequest: 1,
    commandTimeout: 1_000,
  }).on('error', (error: Error) => logger.warn({ err: error }, `redis apq store: ${error.message}`));
  return {
    async get(hash) {
      try {
        return (await redis.get(apqKey(hash))) ?? undefined;
      } catch (error) {
        logger.warn({ err: error }, 'apq lookup failed; answered as a miss');
        return undefined;
      }
    },
    async set(hash, query) {
      try {
        await redis.set(apqKey(hash), query, 'EX', options.ttlSeconds);
      } catch (error) {
        logger.warn({ err: error }, 'apq registration failed; the client will send the text again');
      }
    },
    close() {
      redis.disconnect();
      return Promise.resolve();
    },
  };
}

/** Options of PersistedOperations; defaults: empty manifest, not persisted-only, an in-memory store. */
export interface PersistedOperationsOptions {
  manifest?: PersistedManifest;
  /** Runs the manifest's operations only (by id or by their exact text); no APQ registration. */
  persistedOnly?: boolean;
  /** The APQ store (unused in persisted-only mode). */
  store?: ApqStore;
  /** Largest document APQ stores, in UTF-8 bytes; a larger one runs but is not stored. */
  maxDocumentBytes?: number;
}

type RequestedId = { kind: 'documentId' | 'apq'; id: string };

// Longest id looked up in the APQ store (whose ids are 64 hex digits): a longer one is not sent to Redis.
const MAX_ID_LENGTH = 256;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Resolves requests' documents from the manifest and the APQ store, and holds persisted-only mode. */
export class PersistedOperations {
  /** Whether only the manifest's operations run. */
  readonly persistedOnly: boolean;
  readonly #manifest: PersistedManifest;
  /** SHA-256 of each manifest document's text: a full-text request matches by it, whatever its id. */
  readonly #manifestTexts: ReadonlySet<string>;
  readonly #store: ApqStore;
  readonly #maxDocumentBytes: number;

  constructor(options: PersistedOperationsOptions = {}) {
    this.persistedOnly = options.persistedOnly ?? false;
    this.#manifest = options.manifest ?? new Map();
    this.#manifestTexts = new Set([...this.#manifest.values()].map(sha256Hex));
    this.#store = options.store ?? createMemoryApqStore({ ttlSeconds: 86_400 });
    this.#maxDocumentBytes = options.maxDocumentBytes ?? 262_144;
  }

  /**
   * The document a request runs, or the error refusing it: BAD_REQUEST (malformed id, or both a
   * documentId and a query), PERSISTED_QUERY_NOT_FOUND (unknown id: an APQ client then sends the
   * text), PERSISTED_QUERY_HASH_MISMATCH, or PERSISTED_QUERY_NOT_ALLOWED (persisted-only mode).
   */
  async resolve(request: PersistedRequest): Promise<ResolvedOperation | GraphQLError> {
    const requested = requestedId(request);
    if (requested instanceof Error) return requested;
    if (request.query != null && typeof request.query !== 'string') {
      return appError('BAD_REQUEST', `expected query to be a string, but got ${typeof request.query}`);
    }
    // graphql-ws requires a query string: a persisted request over it sends "".
    const text = request.query || undefined;
    if (text === undefined) return requested ? this.#lookup(requested) : { query: undefined };
    if (requested?.kind === 'documentId') {
      return appError('BAD_REQUEST', 'expected either a documentId or a query, but got both');
    }
    const hash = sha256Hex(text);
    if (requested && requested.id !== hash) {
      persistedOperationMetrics.inc({ outcome: 'hash_mismatch' });
      return appError(
        'PERSISTED_QUERY_HASH_MISMATCH',
        `expected extensions.persistedQuery.sha256Hash to be the SHA-256 of the query, ${hash}, but got ${requested.id}`,
      );
    }
    if (this.#manifestTexts.has(hash)) {
      persistedOperationMetrics.inc({ outcome: 'manifest' });
      return { query: text };
    }
    if (this.persistedOnly) {
      persistedOperationMetrics.inc({ outcome: 'not_allowed' });
      return appError(
        'PERSISTED_QUERY_NOT_ALLOWED',
        requested
          ? 'only persisted operations run here: this one is not in the manifest, and APQ registration is disabled'
          : 'only persisted operations run here: send a documentId from the manifest, or its exact text',
        { sha256Hash: hash },
      );
    }
    if (!requested) return { query: text };
    return { query: text, register: () => this.#register(hash, text) };
  }

  /** Closes the APQ store. */
  close(): Promise<void> {
    return this.#store.close();
  }

  async #lookup({ id }: RequestedId): Promise<ResolvedOperation | GraphQLError> {
    const fromManifest = this.#manifest.get(id);
    if (fromManifest !== undefined) {
      persistedOperationMetrics.inc({ outcome: 'manifest' });
      return { query: fromManifest };
    }
    if (this.persistedOnly) {
      persistedOperationMetrics.inc({ outcome: 'not_in_manifest' });
      return notFound(id);
    }
    const stored = id.length <= MAX_ID_LENGTH ? await this.#store.get(id) : undefined;
    persistedOperationMetrics.inc({ outcome: stored === undefined ? 'apq_miss' : 'apq_hit' });
    return stored === undefined ? notFound(id) : { query: stored };
  }

  async #register(hash: string, text: string): Promise<void> {
    if (Buffer.byteLength(text, 'utf8') > this.#maxDocumentBytes) {
      persistedOperationMetrics.inc({ outcome: 'apq_too_large' });
      return;
    }
    await this.#store.set(hash, text);
    persistedOperationMetrics.inc({ outcome: 'apq_registered' });
  }
}

/**
 * The gateway's persisted operations as configured: the manifest read now (a ConfigError when
 * PERSISTED_ONLY=true and it does not load), and APQ in Redis when REDIS_URL is set, else in memory.
 */
export async function configurePersistedOperations(
  config: Pick<
    Config,
    'PERSISTED_OPERATIONS_PATH' | 'PERSISTED_ONLY' | 'APQ_TTL_SECONDS' | 'REDIS_URL' | 'MAX_BODY_BYTES'
  >,
  logger: Logger,
): Promise<PersistedOperations> {
  const persistedOnly = config.PERSISTED_ONLY;
  const manifest = await readManifest(config.PERSISTED_OPERATIONS_PATH, persistedOnly);
  const ttlSeconds = config.APQ_TTL_SECONDS;
  // Persisted-only mode registers nothing, so it needs no store.
  const store =
    persistedOnly || !config.REDIS_URL
      ? createMemoryApqStore({ ttlSeconds })
      : await createRedisApqStore({ url: config.REDIS_URL, ttlSeconds, logger });
  logger.info(
    {
      manifest: config.PERSISTED_OPERATIONS_PATH,
      operations: manifest.size,
      persistedOnly,
      apq: persistedOnly ? 'off' : config.REDIS_URL ? 'redis' : 'memory',
    },
    'persisted operations',
  );
  // A registered document is at most what a request body may carry; validation bounds its tokens.
  return new PersistedOperations({ manifest, persistedOnly, store, maxDocumentBytes: config.MAX_BODY_BYTES });
}

/** Apollo clients recognise this exact message (and the code) and retry with the text. */
function notFound(id: string): GraphQLError {
  return appError('PERSISTED_QUERY_NOT_FOUND', 'PersistedQueryNotFound', { id: id.slice(0, MAX_ID_LENGTH) });
}

/** The id a request names by documentId or APQ extension, if any, or the error its malformed form is. */
function requestedId(request: PersistedRequest): RequestedId | undefined | GraphQLError {
  const extensions = request.extensions;
  const apq =
    typeof extensions === 'object' && extensions !== null
      ? (extensions as Record<string, unknown>)['persistedQuery']
      : undefined;
  if (request.documentId != null) {
    if (typeof request.documentId !== 'string' || request.documentId === '') {
      return appError(
        'BAD_REQUEST',
        `expected documentId to be a non-empty string, but got ${excerpt(request.documentId)}`,
      );
    }
    if (apq != null) {
      return appError(
        'BAD_REQUEST',
        'expected either a documentId or extensions.persistedQuery, but got both',
      );
    }
    return { kind: 'documentId', id: bareId(request.documentId) };
  }
  if (apq == null) return undefined;
  const { version, sha256Hash } = (typeof apq === 'object' ? apq : {}) as Record<string, unknown>;
  if (version !== 1 || typeof sha256Hash !== 'string' || !SHA256_HEX.test(sha256Hash)) {
    return appError(
      'BAD_REQUEST',
      `expected extensions.persistedQuery to be { version: 1, sha256Hash: <64 lowercase hex digits> }, but got ${excerpt(apq)}`,
    );
  }
  return { kind: 'apq', id: sha256Hash };
}

function excerpt(value: unknown): string {
  return (JSON.stringify(value) ?? typeof value).slice(0, 120);
}
