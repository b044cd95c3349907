// Rate limits per tenant and per token: sliding-window counters in Redis, shared by every gateway
// instance (one Lua script, one round trip per check), or in this process's memory without Redis.
//
// The sliding window is approximated from two fixed windows, as Cloudflare and @upstash/ratelimit do:
// at a moment `elapsed` ms into the current window, the count is
//   previous * (window - elapsed) / window + current
// i.e. the previous window is assumed to have been spread evenly. Each budget costs one small hash
// (window index, current, previous) whatever the traffic, and a charge may weigh more than 1 (an
// ingest batch costs its events), which a log of requests in a sorted set could only do per member.
// The time comes from the gateway, not Redis's TIME: the script stays deterministic and testable with
// a clock moved by hand, and gateways' NTP skew (milliseconds) is nothing against a minute's window.
//
// A token's budget is keyed by the JWT's `sub` within its tenant, not by a hash of the token string:
// the budget follows the caller, so refreshing or minting another token for the same subject does not
// buy a fresh budget, and the keys stay bounded by the number of callers rather than of tokens.
import { createHash } from 'node:crypto';
import type { Redis as RedisClient } from 'ioredis';
import { Counter } from 'prom-client';
import type { Principal } from '../lib/auth.ts';
import type { Config } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';

/** What a budget counts: queries and mutations by operation, ingested events, subscription starts. */
export const RATE_LIMIT_KINDS = ['query', 'mutation', 'ingest', 'subscription'] as const;

/** One of the budgets of RATE_LIMIT_KINDS. */
export type RateLimitKind = (typeof RATE_LIMIT_KINDS)[number];

/** A budget per window for a whole tenant and for each token of it; 0 = unlimited. */
export interface Budget {
  perTenant: number;
  perToken: number;
}

/** The budgets of every kind. */
export type Budgets = Record<RateLimitKind, Budget>;

/** What one request costs against each budget (a kind left out costs nothing). */
export type Charge = Partial<Record<RateLimitKind, number>>;

/** Who is charged: the tenant, and the token's subject within it. */
export type RateLimitedCaller = Pick<Principal, 'tenant' | 'subject'>;

/** The answer to a check. */
export interface RateLimitDecision {
  allowed: boolean;
  /** Seconds to wait before the same charge can pass (0 when allowed), rounded up for Retry-After. */
  retryAfterSeconds: number;
  /** The deciding budget: the refusing one, or the one with the least left (Infinity when none applies). */
  limit: number;
  /** What that budget has left in the sliding window, after this charge when allowed. */
  remaining: number;
  /** The deciding budget's kind and scope (absent when no budget applies). */
  kind?: RateLimitKind;
  scope?: 'tenant' | 'token';
  /** What the request costs against the deciding budget. */
  cost?: number;
  /** The window the deciding budget is counted over, in seconds (60, or 1 for a burst budget). */
  windowSeconds: number;
  /**
   * True when the refusal was decided from this gateway's memory of an earlier one: the caller came
   * back before its Retry-After (useRateLimit answers such a caller slowly).
   */
  remembered?: boolean;
}

/** The budgets the settings ask for (RATE_LIMIT_* in lib/config.ts). */
export function budgetsOf(config: Config): Budgets {
  return {
    query: {
      perTenant: config.RATE_LIMIT_QUERIES_PER_MINUTE,
      perToken: config.RATE_LIMIT_QUERIES_PER_MINUTE_PER_TOKEN,
    },
    mutation: {
      perTenant: config.RATE_LIMIT_MUTATIONS_PER_MINUTE,
      perToken: config.RATE_LIMIT_MUTATIONS_PER_MINUTE_PER_TOKEN,
    },
    ingest: {
      perTenant: config.RATE_LIMIT_INGEST_EVENTS_PER_MINUTE,
      perToken: config.RATE_LIMIT_INGEST_EVENTS_PER_MINUTE_PER_TOKEN,
    },
    subscription: {
      perTenant: config.RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE,
      perToken: config.RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE_PER_TOKEN,
    },
  };
}

/** Checks and charges requests against the budgets. */
export interface RateLimiter {
  /** Where counts live: Redis (shared by every gateway) or this process's memory. */
  readonly store: 'redis' | 'memory';
  /** How long useRateLimit holds a refusal of a caller that came back before its Retry-After. */
  readonly refusalDelayMs: number;
  /** Admits and charges the request only if every budget it touches can take its cost; otherwise charges nothing. */
  check(caller: RateLimitedCaller, charge: Charge): Promise<RateLimitDecision>;
  /**
   * The refusal of a request whose budget this gateway has already seen spent and that cannot have come
   * back yet (before its Retry-After), decided without the store; undefined when only check() can tell.
   */
  refusedAlready(caller: RateLimitedCaller, charge: Charge): RateLimitDecision | undefined;
  close(): Promise<void>;
}

/** Options of createRateLimiter. */
export interface RateLimiterOptions {
  budgets: Budgets;
  /** Redis to count in; without it, counts live in this process (one gateway instance only). */
  redisUrl?: string;
  logger: Logger;
  /** Length of the sliding window: budgets are per window (default 60 s: per minute). */
  windowMs?: number;
  /**
   * Burst budgets: in any 250 ms a caller may spend at most this multiple of its budget's average rate
   * (at least MIN_BURST), so that a minute's budget cannot be spent in its first second.
   * Applies to queries and mutations; 0 = off.
   */
  burst?: number;
  /** How long a refusal decided from memory (the caller ignored Retry-After) is held before it is sent. */
  refusalDelayMs?: number;
  /** The clock, ms since the epoch (tests move it by hand). */
  now?: () => number;
}

/** Prometheus instruments of the rate limiter (served on the gateway's /metrics). */
export const rateLimitMetrics = {
  refusals: new Counter({
    name: 'pulsegraph_rate_limit_refusals_total',
    help: 'Requests refused with 429 RATE_LIMITED, by budget kind and scope (tenant or token)',
    labelNames: ['kind', 'scope'] as const,
  }),
  failOpen: new Counter({
    name: 'pulsegraph_rate_limit_fail_open_total',
    help: 'Rate-limit checks admitted unchecked because Redis failed or timed out (the limiter fails open)',
  }),
};

/** One budget a request touches. */
interface Meter {
  key: string;
  limit: number;
  cost: number;
  kind: RateLimitKind;
  scope: 'tenant' | 'token';
  /** The window this budget is counted over. */
  windowMs: number;
}

/**
 * The window of burst budgets, and the least a burst budget allows in it. A short window spreads what
 * it admits: 600 a minute at burst 5 is 13 per 250 ms, not 50 at once each second.
 */
const BURST_WINDOW_MS = 250;
const MIN_BURST = 5;
/**
 * The kinds with burst budgets. Subscription starts come in bursts by nature (a dashboard opening, every
 * client resuming after a restart) and ingestion in batches: their per-minute budgets alone hold them.
 */
const BURST_KINDS: ReadonlySet<RateLimitKind> = new Set(['query', 'mutation']);

/** What the counting (Lua script or memory) answers: the verdict over all meters of a request. */
interface Verdict {
  allowed: boolean;
  retryAfterMs: number;
  /** Index of the deciding meter. */
  deciding: number;
  remaining: number;
  /** Decided from the memory of an earlier refusal, without counting. */
  remembered?: boolean;
}

/** A budget's counts: the window they belong to (index since the epoch), its count and the one before. */
interface WindowCounts {
  window: number;
  current: number;
  previous: number;
}

/** The counts as of window `index`: rolled forward when the stored window is over. */
function rolled(stored: WindowCounts | undefined, index: number): WindowCounts {
  if (!stored || stored.window < index - 1) return { window: index, current: 0, previous: 0 };
  if (stored.window === index - 1) return { window: index, current: 0, previous: stored.current };
  // stored.window > index: another gateway's clock runs ahead; its counts are taken as this window's.
  return stored;
}

/**
 * Decides over every meter of a request, in integers (each side multiplied by the window) so that
 * Redis's Lua and JavaScript agree to the unit. Mirrored line by line in SLIDING_WINDOW_SCRIPT.
 */
function decide(meters: readonly Meter[], counts: readonly WindowCounts[], now: number): Verdict {
  const verdict: Verdict = { allowed: true, retryAfterMs: 0, deciding: 0, remaining: -1 };
  meters.forEach(({ limit, cost, windowMs }, i) => {
    const elapsed = now - Math.floor(now / windowMs) * windowMs;
    const { current, previous } = counts[i]!;
    const free = limit * windowMs - previous * (windowMs - elapsed) - current * windowMs;
    if (free >= cost * windowMs) {
      const left = Math.floor((free - cost * windowMs) / windowMs);
      if (verdict.allowed && (verdict.remaining < 0 || left < verdict.remaining)) {
        verdict.remaining = left;
        verdict.deciding = i;
      }
      return;
    }
    // The earliest moment the cost fits, if nothing else is charged meanwhile: when this window's count
    // alone leaves no room, once it has become the previous window and faded enough; otherwise once
    // the previous window has faded enough within this one.
    const wait =
      current + cost > limit
        ? windowMs - elapsed + windowMs - Math.floor(((limit - cost) * windowMs) / current)
        : windowMs - Math.floor(((limit - current - cost) * windowMs) / previous) - elapsed;
    if (verdict.allowed || wait > verdict.retryAfterMs) {
      verdict.retryAfterMs = wait;
      verdict.deciding = i;
      verdict.remaining = Math.max(0, Math.floor(free / windowMs));
    }
    verdict.allowed = false;
  });
  return verdict;
}

/**
 * decide() and the charge, atomically in Redis. KEYS: one hash per budget (fields w, c, p as in
 * WindowCounts); ARGV: now, then each key's limit, cost and window (ms). Returns {allowed (1/0),
 * retryAfterMs, deciding (0-based), remaining}. Keys expire two windows after their last charge, when
 * they no longer count.
 */
const SLIDING_WINDOW_SCRIPT = `
local now = tonumber(ARGV[1])
local n = #KEYS
local allowed, retry, deciding, remaining = 1, 0, 1, -1
local counts = {}
for i = 1, n do
  local limit, cost, windowMs = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local index = math.floor(now / windowMs)
  local elapsed = now - index * windowMs
  local stored = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
  local w, c, p = tonumber(stored[1]), tonumber(stored[2]) or 0, tonumber(stored[3]) or 0
  if w == nil or w < index - 1 then
    w, c, p = index, 0, 0
  elseif w == index - 1 then
    w, c, p = index, 0, c
  end
  counts[i] = { w, c, p, cost, windowMs }
  local free = limit * windowMs - p * (windowMs - elapsed) - c * windowMs
  if free >= cost * windowMs then
    local left = math.floor((free - cost * windowMs) / windowMs)
    if allowed == 1 and (remaining < 0 or left < remaining) then
      remaining, deciding = left, i
    end
  else
    local wait
    if c + cost > limit then
      wait = windowMs - elapsed + windowMs - math.floor(((limit - cost) * windowMs) / c)
    else
      wait = windowMs - math.floor(((limit - c - cost) * windowMs) / p) - elapsed
    end
    if allowed == 1 or wait > retry then
      retry, deciding, remaining = wait, i, math.max(0, math.floor(free / windowMs))
    end
    allowed = 0
  end
end
if allowed == 1 then
  for i = 1, n do
    local w, c, p, cost, windowMs = unpack(counts[i])
    redis.call('HSET', KEYS[i], 'w', w, 'c', c + cost, 'p', p)
    redis.call('PEXPIRE', KEYS[i], 2 * windowMs)
  end
end
return { allowed, retry, deciding - 1, remaining }
`;

/** Counts requests against meters and charges them when all admit. */
interface CountStore {
  charge(meters: readonly Meter[], now: number): Promise<Verdict>;
  close(): Promise<void>;
}

/** Counts in this process: the same arithmetic as the script, for a gateway without Redis. */
function memoryStore(): CountStore {
  const windows = new Map<string, WindowCounts & { windowMs: number }>();
  let sweptAt = 0;
  return {
    charge(meters, now) {
      // Budgets untouched for two windows count nothing any more: drop them once a minute.
      if (now - sweptAt >= SWEEP_INTERVAL_MS) {
        sweptAt = now;
        for (const [key, counts] of windows)
          if (counts.window < Math.floor(now / counts.windowMs) - 1) windows.delete(key);
      }
      const counts = meters.map((meter) => rolled(windows.get(meter.key), Math.floor(now / meter.windowMs)));
      const verdict = decide(meters, counts, now);
      if (verdict.allowed) {
        meters.forEach((meter, i) => {
          const { window, current, previous } = counts[i]!;
          windows.set(meter.key, {
            window,
            current: current + meter.cost,
            previous,
            windowMs: meter.windowMs,
          });
        });
      }
      return Promise.resolve(verdict);
    },
    close: () => Promise.resolve(),
  };
}

type ScriptedRedis = RedisClient & {
  slidingWindow(keyCount: number, ...keysAndArgs: Array<string | number>): Promise<number[]>;
};

/** How often the memory store drops budgets that no longer count. */
const SWEEP_INTERVAL_MS = 60_000;

/** How long a check may wait for Redis before it is admitted unchecked. */
const REDIS_TIMEOUT_MS = 500;
/** At most one warning per this interval while Redis keeps failing. */
const WARN_INTERVAL_MS = 10_000;

/** Counts in Redis, shared by every gateway instance. */
async function redisStore(url: string, logger: Logger): Promise<CountStore> {
  // Loaded here: a gateway without REDIS_URL never loads ioredis (gateway/server.ts).
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    // Requests must not queue behind an outage: while disconnected a check fails at once (and is
    // admitted, below), and a slow Redis costs a request at most REDIS_TIMEOUT_MS.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 250, 5_000),
  }) as ScriptedRedis;
  // Connection errors and admissions unchecked are each warned of once per interval, not per request.
  const warnedAt = { connection: 0, failOpen: 0 };
  const warn = (topic: keyof typeof warnedAt, error: Error, message: string) => {
    if (Date.now() - warnedAt[topic] < WARN_INTERVAL_MS) return;
    warnedAt[topic] = Date.now();
    logger.warn({ err: error }, message);
  };
  redis.on('error', (error: Error) => warn('connection', error, `rate limiter: redis: ${error.message}`));
  redis.defineCommand('slidingWindow', { lua: SLIDING_WINDOW_SCRIPT });
  // Wait for the connection (or its first failure), so the first requests are counted; a Redis that
  // is down must not keep the gateway from starting: checks are admitted unchecked until it is back.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3_000);
    const settle = () => {
      clearTimeout(timer);
      redis.off('ready', settle).off('error', settle);
      resolve();
    };
    redis.once('ready', settle).once('error', settle);
  });
  return {
    async charge(meters, now) {
      try {
        const [allowed, retryAfterMs, deciding, remaining] = await redis.slidingWindow(
          meters.length,
          ...meters.map((meter) => meter.key),
          now,
          ...meters.flatMap((meter) => [meter.limit, meter.cost, meter.windowMs]),
        );
        return {
          allowed: allowed === 1,
          retryAfterMs: retryAfterMs!,
          deciding: deciding!,
          remaining: remaining!,
        };
      } catch (error) {
        // Fail open: an outage of Redis must not become an outage of the API (never a 5xx for it);
        // the warning and pulsegraph_rate_limit_fail_open_total say that limits are off meanwhile.
        rateLimitMetrics.failOpen.inc();
        warn(
          'failOpen',
          error as Error,
          `rate limiter: redis failed, request admitted unchecked: ${(error as Error).message}`,
        );
        return { allowed: true, retryAfterMs: 0, deciding: 0, remaining: meters[0]!.limit };
      }
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/**
 * The Redis key of a budget. `{tenant}` is a Redis Cluster hash tag: every budget of a tenant lives on
 * one node, so the script may touch them all. Subjects are hashed: they may hold any character, and
 * keys should not carry user identifiers.
 */
function budgetKey(caller: RateLimitedCaller, kind: RateLimitKind, scope: 'tenant' | 'token'): string {
  if (scope === 'tenant') return `ratelimit:{${caller.tenant}}:${kind}`;
  const subject = createHash('sha256').update(caller.subject).digest('base64url').slice(0, 22);
  return `ratelimit:{${caller.tenant}}:${kind}:token:${subject}`;
}

/** The burst budget beside a budget of `limit` per `windowMs`, or 0 when bursts are not limited. */
function burstLimit(limit: number, windowMs: number, burst: number): number {
  if (burst <= 0 || windowMs <= BURST_WINDOW_MS) return 0;
  const perBurstWindow = Math.max(MIN_BURST, Math.ceil((limit * burst * BURST_WINDOW_MS) / windowMs));
  return perBurstWindow < limit ? perBurstWindow : 0;
}

/** Builds the limiter: over Redis when a URL is given, in memory otherwise. */
export async function createRateLimiter(options: RateLimiterOptions): Promise<RateLimiter> {
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  const store = options.redisUrl ? await redisStore(options.redisUrl, options.logger) : memoryStore();
  const burst = options.burst ?? 0;
  // A refusal stands until its Retry-After (budgets only come back with time), so a caller refused
  // once is refused again here, without a round trip, for as long: a flood costs the store nothing.
  const refused = new Map<string, { until: number; cost: number }>();
  const remember = (meter: Meter, at: number, until: number) => {
    if (refused.size >= 10_000)
      for (const [key, entry] of refused) if (entry.until <= at) refused.delete(key);
    refused.set(meter.key, { until, cost: meter.cost });
  };
  const refusedHere = (meters: readonly Meter[], at: number): Verdict | undefined => {
    for (const [index, meter] of meters.entries()) {
      const entry = refused.get(meter.key);
      if (entry && entry.until > at && meter.cost >= entry.cost)
        return {
          allowed: false,
          retryAfterMs: entry.until - at,
          deciding: index,
          remaining: 0,
          remembered: true,
        };
    }
    return undefined;
  };
  const metersOf = (caller: RateLimitedCaller, charge: Charge): Meter[] => {
    const meters: Meter[] = [];
    for (const kind of RATE_LIMIT_KINDS) {
      const cost = charge[kind] ?? 0;
      if (cost <= 0) continue;
      const { perTenant, perToken } = options.budgets[kind];
      for (const [scope, limit] of [
        ['tenant', perTenant],
        ['token', perToken],
      ] as const) {
        if (limit <= 0) continue;
        const key = budgetKey(caller, kind, scope);
        meters.push({ key, limit, cost, kind, scope, windowMs });
        const perBurst = BURST_KINDS.has(kind) ? burstLimit(limit, windowMs, burst) : 0;
        if (perBurst > 0)
          meters.push({ key: `${key}:b`, limit: perBurst, cost, kind, scope, windowMs: BURST_WINDOW_MS });
      }
    }
    return meters;
  };
  const decisionOf = (meters: readonly Meter[], verdict: Verdict): RateLimitDecision => {
    const { kind, scope, limit, cost, windowMs: meterWindowMs } = meters[verdict.deciding]!;
    if (!verdict.allowed) rateLimitMetrics.refusals.inc({ kind, scope });
    return {
      ...(verdict.remembered ? { remembered: true } : {}),
      allowed: verdict.allowed,
      retryAfterSeconds: verdict.allowed ? 0 : Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)),
      limit,
      remaining: verdict.remaining,
      kind,
      scope,
      cost,
      windowSeconds: meterWindowMs / 1000,
    };
  };
  return {
    store: options.redisUrl ? 'redis' : 'memory',
    refusalDelayMs: options.refusalDelayMs ?? 0,
    async check(caller, charge) {
      const meters = metersOf(caller, charge);
      if (meters.length === 0)
        return {
          allowed: true,
          retryAfterSeconds: 0,
          limit: Infinity,
          remaining: Infinity,
          windowSeconds: windowMs / 1000,
        };
      // A cost larger than a whole budget can never pass: refused without counting (waiting will not help).
      const tooLarge = meters.find((meter) => meter.cost > meter.limit);
      const at = now();
      const verdict: Verdict = tooLarge
        ? {
            allowed: false,
            retryAfterMs: tooLarge.windowMs,
            deciding: meters.indexOf(tooLarge),
            remaining: 0,
          }
        : (refusedHere(meters, at) ?? (await store.charge(meters, at)));
      if (!verdict.allowed) remember(meters[verdict.deciding]!, at, at + verdict.retryAfterMs);
      return decisionOf(meters, verdict);
    },
    refusedAlready(caller, charge) {
      const meters = metersOf(caller, charge);
      const verdict = refusedHere(meters, now());
      return verdict && decisionOf(meters, verdict);
    },
    close: () => store.close(),
  };
}
