// Persisted operations without a gateway: hashing, the manifest, the APQ protocol's outcomes, persisted-only
// mode, and the APQ store in memory and in the suite's real Redis.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GraphQLError } from 'graphql';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { services } from '../test/support/services.ts';
import {
  apqKey,
  createMemoryApqStore,
  createRedisApqStore,
  parseManifest,
  PersistedOperations,
  persistedOperationMetrics,
  readManifest,
  sha256Hex,
  type ApqStore,
  type ResolvedOperation,
} from './persistedOperations.ts';

const logger = createLogger('test', 'silent');
const KPIS = 'query Kpis { kpis { code name } }';
const KPIS_HASH = sha256Hex(KPIS);
const apq = (sha256Hash: string) => ({ persistedQuery: { version: 1, sha256Hash } });
/** A document no other test (or earlier run against the same Redis) has registered. */
const fresh = () => `query Fresh_${randomUUID().replaceAll('-', '')} { kpis { code } }`;

function expectError(outcome: ResolvedOperation | GraphQLError, code: string): GraphQLError {
  expect(outcome).toBeInstanceOf(Error);
  const error = outcome as GraphQLError;
  expect(error.extensions['code']).toBe(code);
  return error;
}

function expectQuery(outcome: ResolvedOperation | GraphQLError): ResolvedOperation {
  expect(outcome).not.toBeInstanceOf(Error);
  return outcome as ResolvedOperation;
}

async function metric(outcome: string): Promise<number> {
  const { values } = await persistedOperationMetrics.get();
  return values.find((value) => value.labels.outcome === outcome)?.value ?? 0;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pulsegraph-manifest-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('hashing and the manifest', () => {
  it('hashes a document as the lowercase hex SHA-256 of its UTF-8 text', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex('{ kpi(code: "€") { code } }')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('parses the codegen manifest, dropping a sha256: prefix of an id', () => {
    const manifest = parseManifest(JSON.stringify({ [KPIS_HASH]: KPIS, 'sha256:abc': '{ kpis { code } }' }));
    expect([...manifest]).toEqual([
      [KPIS_HASH, KPIS],
      ['abc', '{ kpis { code } }'],
    ]);
  });

  it('says what it expected of a malformed manifest', () => {
    expect(() => parseManifest('[1]')).toThrow(
      'expected a JSON object of document id -> document text, but got an array',
    );
    expect(() => parseManifest('{"a": 1}')).toThrow(
      'expected the document of id "a" to be a non-empty string',
    );
    expect(() => parseManifest('{')).toThrow(/^expected JSON, but it does not parse/);
  });

  it('runs without a manifest unless persisted-only, which refuses to start with one line naming the setting', async () => {
    const missing = join(dir, 'missing.json');
    expect((await readManifest(missing, false)).size).toBe(0);
    const refusal = readManifest(missing, true);
    await expect(refusal).rejects.toBeInstanceOf(ConfigError);
    await expect(refusal).rejects.toThrow(
      `invalid setting PERSISTED_OPERATIONS_PATH: PERSISTED_ONLY=true needs the persisted-operation manifest (npm run codegen writes it), but ${missing} cannot be read (ENOENT)`,
    );

    const empty = join(dir, 'empty.json');
    await writeFile(empty, '{}');
    expect((await readManifest(empty, false)).size).toBe(0);
    await expect(readManifest(empty, true)).rejects.toThrow(
      `invalid setting PERSISTED_OPERATIONS_PATH: PERSISTED_ONLY=true, but ${empty} holds no operation`,
    );

    const malformed = join(dir, 'malformed.json');
    await writeFile(malformed, '["not", "a", "manifest"]');
    // Malformed is a mistake whatever the mode.
    await expect(readManifest(malformed, false)).rejects.toBeInstanceOf(ConfigError);

    const good = join(dir, 'good.json');
    await writeFile(good, JSON.stringify({ [KPIS_HASH]: KPIS }));
    expect((await readManifest(good, true)).get(KPIS_HASH)).toBe(KPIS);
  });
});

describe('resolving a request', () => {
  const persisted = new PersistedOperations({ manifest: new Map([[KPIS_HASH, KPIS]]) });
  afterAll(() => persisted.close());

  it('passes a plain query through, with nothing to register', async () => {
    expect(await persisted.resolve({ query: '{ kpis { code } }' })).toEqual({ query: '{ kpis { code } }' });
    expect(await persisted.resolve({})).toEqual({ query: undefined });
  });

  it('runs the APQ protocol: unknown hash, registration, then the hash alone', async () => {
    const query = fresh();
    const hash = sha256Hex(query);
    const misses = await metric('apq_miss');
    const miss = expectError(await persisted.resolve({ extensions: apq(hash) }), 'PERSISTED_QUERY_NOT_FOUND');
    // The exact message Apollo's clients match to retry with the text.
    expect(miss.message).toBe('PersistedQueryNotFound');
    expect(await metric('apq_miss')).toBe(misses + 1);

    const registration = expectQuery(await persisted.resolve({ query, extensions: apq(hash) }));
    expect(registration.query).toBe(query);
    // Stored only when the transport calls register, after validation.
    expectError(await persisted.resolve({ extensions: apq(hash) }), 'PERSISTED_QUERY_NOT_FOUND');
    await registration.register!();
    // graphql-ws requires a query string: "" means none.
    expect(await persisted.resolve({ query: '', extensions: apq(hash) })).toEqual({ query });
  });

  it('refuses a hash that is not the query SHA-256, and a malformed persistedQuery', async () => {
    const query = fresh();
    const wrong = sha256Hex(`${query} `);
    const mismatch = expectError(
      await persisted.resolve({ query, extensions: apq(wrong) }),
      'PERSISTED_QUERY_HASH_MISMATCH',
    );
    expect(mismatch.message).toBe(
      `expected extensions.persistedQuery.sha256Hash to be the SHA-256 of the query, ${sha256Hex(query)}, but got ${wrong}`,
    );
    expectError(await persisted.resolve({ extensions: apq(wrong) }), 'PERSISTED_QUERY_NOT_FOUND');
    const malformed = expectError(
      await persisted.resolve({ extensions: { persistedQuery: { version: 2, sha256Hash: 'x' } } }),
      'BAD_REQUEST',
    );
    expect(malformed.message).toMatch(/^expected extensions.persistedQuery to be \{ version: 1, sha256Hash/);
  });

  it('serves a manifest document by documentId (with or without sha256:) or by its APQ hash, before the store', async () => {
    expect(await persisted.resolve({ documentId: KPIS_HASH })).toEqual({ query: KPIS });
    expect(await persisted.resolve({ documentId: `sha256:${KPIS_HASH}` })).toEqual({ query: KPIS });
    expect(await persisted.resolve({ extensions: apq(KPIS_HASH) })).toEqual({ query: KPIS });
    // Its text is served as it is, and not registered again.
    expect(await persisted.resolve({ query: KPIS, extensions: apq(KPIS_HASH) })).toEqual({ query: KPIS });
    expectError(await persisted.resolve({ documentId: KPIS_HASH, query: KPIS }), 'BAD_REQUEST');
    expectError(await persisted.resolve({ documentId: 'sha256:unknown' }), 'PERSISTED_QUERY_NOT_FOUND');
  });

  it('runs a document larger than maxDocumentBytes without storing it', async () => {
    const small = new PersistedOperations({ maxDocumentBytes: 64 });
    const query = `${fresh()} # ${'x'.repeat(64)}`;
    const tooLarge = await metric('apq_too_large');
    const registration = expectQuery(await small.resolve({ query, extensions: apq(sha256Hex(query)) }));
    await registration.register!();
    expect(await metric('apq_too_large')).toBe(tooLarge + 1);
    expectError(await small.resolve({ extensions: apq(sha256Hex(query)) }), 'PERSISTED_QUERY_NOT_FOUND');
  });
});

describe('persisted-only mode', () => {
  const store = createMemoryApqStore({ ttlSeconds: 60 });
  // A manifest whose ids are not SHA-256 (another codegen's choice): full texts still match by their hash.
  const persisted = new PersistedOperations({
    manifest: new Map([['kpis-v1', KPIS]]),
    persistedOnly: true,
    store,
  });
  afterAll(() => persisted.close());

  it('serves a manifest operation by id and by its exact text', async () => {
    expect(await persisted.resolve({ documentId: 'kpis-v1' })).toEqual({ query: KPIS });
    expect(await persisted.resolve({ query: KPIS })).toEqual({ query: KPIS });
    expect(await persisted.resolve({ query: KPIS, extensions: apq(KPIS_HASH) })).toEqual({ query: KPIS });
  });

  it('refuses any other text, introspection included, and APQ registration', async () => {
    const refused = await metric('not_allowed');
    const other = expectError(
      await persisted.resolve({ query: '{ kpis { code } }' }),
      'PERSISTED_QUERY_NOT_ALLOWED',
    );
    expect(other.message).toBe(
      'only persisted operations run here: send a documentId from the manifest, or its exact text',
    );
    expectError(
      await persisted.resolve({ query: '{ __schema { types { name } } }' }),
      'PERSISTED_QUERY_NOT_ALLOWED',
    );
    // The manifest's text with one more space is another document.
    expectError(await persisted.resolve({ query: `${KPIS} ` }), 'PERSISTED_QUERY_NOT_ALLOWED');
    const query = fresh();
    expectError(
      await persisted.resolve({ query, extensions: apq(sha256Hex(query)) }),
      'PERSISTED_QUERY_NOT_ALLOWED',
    );
    expect(await metric('not_allowed')).toBe(refused + 4);
  });

  it('answers an id outside the manifest as not found, without reading the APQ store', async () => {
    const query = fresh();
    await store.set(sha256Hex(query), query);
    const get = vi.spyOn(store, 'get');
    expectError(await persisted.resolve({ extensions: apq(sha256Hex(query)) }), 'PERSISTED_QUERY_NOT_FOUND');
    expect(get).not.toHaveBeenCalled();
  });
});

/** What every APQ store does, run against each. */
function storeContract(name: string, create: (ttlSeconds: number) => ApqStore | Promise<ApqStore>) {
  describe(`${name} APQ store`, () => {
    it('returns what was set, and nothing for an unknown hash', async () => {
      const store = await create(60);
      try {
        const query = fresh();
        expect(await store.get(sha256Hex(query))).toBeUndefined();
        await store.set(sha256Hex(query), query);
        expect(await store.get(sha256Hex(query))).toBe(query);
      } finally {
        await store.close();
      }
    });

    it('serves a registration made through another instance (one store, several gateways)', async () => {
      const [first, second] = await Promise.all([create(60), create(60)]);
      try {
        const query = fresh();
        await first.set(sha256Hex(query), query);
        const expected = name === 'redis' ? query : undefined;
        expect(await second.get(sha256Hex(query))).toBe(expected);
      } finally {
        await Promise.all([first.close(), second.close()]);
      }
    });
  });
}

storeContract('memory', (ttlSeconds) => createMemoryApqStore({ ttlSeconds }));
storeContract('redis', (ttlSeconds) => createRedisApqStore({ url: services().redisUrl, ttlSeconds, logger }));

describe('memory APQ store', () => {
  afterEach(() => vi.useRealTimers());

  it('forgets a document after its TTL, and the least recently used beyond maxEntries', async () => {
    vi.useFakeTimers();
    const store = createMemoryApqStore({ ttlSeconds: 10, maxEntries: 2 });
    await store.set('a', 'A');
    await store.set('b', 'B');
    expect(await store.get('a')).toBe('A'); // now b is the least recently used
    await store.set('c', 'C');
    expect([await store.get('a'), await store.get('b'), await store.get('c')]).toEqual(['A', undefined, 'C']);
    vi.advanceTimersByTime(10_001);
    expect(await store.get('a')).toBeUndefined();
  });
});

describe('redis APQ store', () => {
  it('keeps each document under apq:<hash> with the TTL', async () => {
    const store = await createRedisApqStore({ url: services().redisUrl, ttlSeconds: 120, logger });
    const redis = new Redis(services().redisUrl);
    try {
      const query = fresh();
      await store.set(sha256Hex(query), query);
      expect(await redis.get(`apq:${sha256Hex(query)}`)).toBe(query);
      expect(apqKey(sha256Hex(query))).toBe(`apq:${sha256Hex(query)}`);
      const ttl = await redis.ttl(apqKey(sha256Hex(query)));
      expect(ttl).toBeGreaterThan(100);
      expect(ttl).toBeLessThanOrEqual(120);
    } finally {
      await store.close();
      redis.disconnect();
    }
  });

  it('answers a miss, not an error, while Redis is unreachable', async () => {
    // A port nothing listens on: every command fails.
    const store = await createRedisApqStore({ url: 'redis://127.0.0.1:1', ttlSeconds: 60, logger });
    try {
      await expect(store.set(KPIS_HASH, KPIS)).resolves.toBeUndefined();
      await expect(store.get(KPIS_HASH)).resolves.toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
