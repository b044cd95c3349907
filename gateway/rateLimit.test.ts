// The sliding-window rate limiter, run unchanged over the suite's real Redis and over the in-memory
// fallback: the same answers to the same requests at the same moments prove the two agree.
import { randomUUID } from 'node:crypto';
import { parse } from 'graphql';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../lib/logger.ts';
import { freePort } from '../scripts/network.ts';
import { services } from '../test/support/services.ts';
import { chargeOf } from './plugins/useRateLimit.ts';
import {
  createRateLimiter,
  rateLimitMetrics,
  type Budgets,
  type RateLimiter,
  type RateLimiterOptions,
} from './rateLimit.ts';

const MINUTE = 60_000;
const unlimited = { perTenant: 0, perToken: 0 };
const budgets = (given: Partial<Budgets>): Budgets => ({
  query: unlimited,
  mutation: unlimited,
  ingest: unlimited,
  subscription: unlimited,
  ...given,
});

/** A clock the test moves by hand, starting `offset` ms into a minute window. */
function manualClock(offset = 0) {
  const clock = { at: Math.floor(Date.now() / MINUTE) * MINUTE + offset, now: () => clock.at };
  return clock;
}

const limiters: RateLimiter[] = [];
afterEach(async () => {
  await Promise.all(limiters.splice(0).map((limiter) => limiter.close()));
});

/** A tenant no other test (or test file sharing this Redis) charges. */
const freshTenant = () => `t-${randomUUID().slice(0, 8)}`;

const refusals = async (kind: string, scope: string) =>
  (await rateLimitMetrics.refusals.get()).values.find(
    (value) => value.labels.kind === kind && value.labels.scope === scope,
  )?.value ?? 0;

describe.each(['redis', 'memory'] as const)('the sliding-window limiter (%s)', (store) => {
  async function limiter(options: Omit<RateLimiterOptions, 'logger'>): Promise<RateLimiter> {
    const created = await createRateLimiter({
      ...options,
      redisUrl: store === 'redis' ? services().redisUrl : undefined,
      logger: createLogger('rate-limit-test', 'silent'),
    });
    limiters.push(created);
    expect(created.store).toBe(store);
    return created;
  }

  it('admits a budget exactly and then refuses, charging nothing for a refusal', async () => {
    const clock = manualClock(10_000);
    const limits = await limiter({
      budgets: budgets({ query: { perTenant: 5, perToken: 0 } }),
      now: clock.now,
    });
    const caller = { tenant: freshTenant(), subject: 'alice' };
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(await limits.check(caller, { query: 1 }));
    expect(answers.map((a) => a.allowed)).toEqual([true, true, true, true, true, false, false]);
    expect(answers.slice(0, 5).map((a) => a.remaining)).toEqual([4, 3, 2, 1, 0]);
    expect(answers[5]).toMatchObject({ limit: 5, remaining: 0, kind: 'query', scope: 'tenant' });
    // Refusals were not counted: the same wait is asked of both.
    expect(answers[6]!.retryAfterSeconds).toBe(answers[5]!.retryAfterSeconds);
  });

  it('refuses a caller it has seen refused again without the store, until its Retry-After', async () => {
    const clock = manualClock(10_000);
    const limits = await limiter({
      budgets: budgets({ query: { perTenant: 2, perToken: 0 } }),
      now: clock.now,
    });
    const caller = { tenant: freshTenant(), subject: 'alice' };
    expect(limits.refusedAlready(caller, { query: 1 })).toBeUndefined();
    for (let i = 0; i < 2; i++) expect((await limits.check(caller, { query: 1 })).allowed).toBe(true);
    expect(limits.refusedAlready(caller, { query: 1 })).toBeUndefined(); // spent, but not yet seen refused
    const refused = await limits.check(caller, { query: 1 });
    expect(refused.allowed).toBe(false);
    expect(limits.refusedAlready(caller, { query: 1 })).toMatchObject({
      allowed: false,
      retryAfterSeconds: refused.retryAfterSeconds,
      kind: 'query',
      scope: 'tenant',
    });
    expect(limits.refusedAlready({ ...caller, tenant: freshTenant() }, { query: 1 })).toBeUndefined();
    expect(limits.refusedAlready(caller, { mutation: 1 })).toBeUndefined();
    clock.at += refused.retryAfterSeconds * 1000;
    expect(limits.refusedAlready(caller, { query: 1 })).toBeUndefined();
    expect((await limits.check(caller, { query: 1 })).allowed).toBe(true);
  });

  it("holds a burst to its burst budget, so a minute's budget cannot be spent in one second", async () => {
    const clock = manualClock(10_000);
    // 600 a minute at burst 5: 13 in any 250 ms (ingestion has no burst budget).
    const limits = await limiter({
      budgets: budgets({
        query: { perTenant: 600, perToken: 0 },
        ingest: { perTenant: 600, perToken: 0 },
      }),
      burst: 5,
      refusalDelayMs: 1_000,
      now: clock.now,
    });
    const caller = { tenant: freshTenant(), subject: 'alice' };
    const answers = [];
    for (let i = 0; i < 14; i++) answers.push(await limits.check(caller, { query: 1 }));
    expect(answers.filter((a) => a.allowed)).toHaveLength(13);
    expect(answers[13]).toMatchObject({ allowed: false, limit: 13, windowSeconds: 0.25, kind: 'query' });
    expect(answers[13]!.retryAfterSeconds).toBe(1);
    expect(answers[13]!.remembered).toBeUndefined();
    // Back before the Retry-After: decided from memory (useRateLimit holds such a refusal).
    expect(await limits.check(caller, { query: 1 })).toMatchObject({ allowed: false, remembered: true });
    expect(limits.refusalDelayMs).toBe(1_000);
    // Half a second later the burst budget is back (13 left), the minute's has 587 left.
    clock.at += 500;
    expect(await limits.check(caller, { query: 1 })).toMatchObject({ allowed: true, remaining: 12 });
    // A batch of 500 events passes at once: ingestion has no burst budget.
    expect((await limits.check(caller, { ingest: 500 })).allowed).toBe(true);
  });

  it('asks for a Retry-After after which the request passes, and not a millisecond before', async () => {
    const clock = manualClock(10_000);
    const limits = await limiter({
      budgets: budgets({ query: { perTenant: 5, perToken: 0 } }),
      now: clock.now,
    });
    const caller = { tenant: freshTenant(), subject: 'alice' };
    const start = clock.at;
    for (let i = 0; i < 5; i++) expect((await limits.check(caller, { query: 1 })).allowed).toBe(true);
    // 5 queries 10 s into a window: one more fits once those 5, as the previous window, weigh at most
    // 4, i.e. 12 s into the next window: 50 s + 12 s from now.
    const refused = await limits.check(caller, { query: 1 });
    expect(refused).toMatchObject({ allowed: false, retryAfterSeconds: 62 });
    clock.at = start + 62_000 - 1;
    expect((await limits.check(caller, { query: 1 })).allowed).toBe(false);
    clock.at = start + 62_000;
    expect((await limits.check(caller, { query: 1 })).allowed).toBe(true);
    // Now the previous window alone holds the budget back: 5 × (1 - 12/60) + 1 = 5; the next query
    // fits once the previous window has faded to 3, 24 s into this window, 12 s from now.
    const next = await limits.check(caller, { query: 1 });
    expect(next).toMatchObject({ allowed: false, retryAfterSeconds: 12 });
    clock.at = start + 74_000 - 1;
    expect((await limits.check(caller, { query: 1 })).allowed).toBe(false);
    clock.at = start + 74_000;
    expect((await limits.check(caller, { query: 1 })).allowed).toBe(true);
  });

  it('slides: a spent window gives its budget back gradually over the next one, not all at once', async () => {
    const clock = manualClock(59_000);
    const limits = await limiter({
      budgets: budgets({ query: { perTenant: 6, perToken: 0 } }),
      now: clock.now,
    });
    const caller = { tenant: freshTenant(), subject: 'alice' };
    for (let i = 0; i < 6; i++) expect((await limits.check(caller, { query: 1 })).allowed).toBe(true);
    const nextWindow = clock.at - 59_000 + MINUTE;
    /** How many queries pass, one after the other, `offset` ms after the next window starts. */
    const admittedAt = async (offset: number) => {
      clock.at = nextWindow + offset;
      let admitted = 0;
      while ((await limits.check(caller, { query: 1 })).allowed) admitted++;
      return admitted;
    };
    // A fixed window would admit 6 at once when the minute turns; the sliding one admits one more
    // for each sixth of the minute that has passed since.
    expect(await admittedAt(0)).toBe(0);
    expect(await admittedAt(10_000)).toBe(1);
    expect(await admittedAt(20_000)).toBe(1);
    expect(await admittedAt(40_000)).toBe(2);
    // A window later nothing of the first is left, and the second's 4 weigh 4 × (1 - 30/60) = 2.
    expect(await admittedAt(MINUTE + 30_000)).toBe(4);
  });

  it('keeps the budgets of tenants and of tokens apart', async () => {
    const clock = manualClock(5_000);
    const limits = await limiter({
      budgets: budgets({ mutation: { perTenant: 7, perToken: 3 } }),
      now: clock.now,
    });
    const tenant = freshTenant();
    const spend = async (subject: string, times: number) => {
      const answers = [];
      for (let i = 0; i < times; i++) answers.push(await limits.check({ tenant, subject }, { mutation: 1 }));
      return answers;
    };
    const tokenRefusalsBefore = await refusals('mutation', 'token');
    const tenantRefusalsBefore = await refusals('mutation', 'tenant');
    const alice = await spend('alice', 4);
    expect(alice.map((a) => a.allowed)).toEqual([true, true, true, false]);
    expect(alice[3]).toMatchObject({ scope: 'token', limit: 3 });
    // Bob's token is untouched by Alice's; the tenant has 4 left after his 3.
    expect((await spend('bob', 3)).map((a) => a.allowed)).toEqual([true, true, true]);
    const carol = await spend('carol', 2);
    expect(carol.map((a) => a.allowed)).toEqual([true, false]);
    expect(carol[1]).toMatchObject({ scope: 'tenant', limit: 7 });
    // Another tenant, even with the same subject, has budgets of its own.
    expect((await limits.check({ tenant: freshTenant(), subject: 'alice' }, { mutation: 1 })).allowed).toBe(
      true,
    );
    // So do the other kinds (unlimited here).
    expect((await limits.check({ tenant, subject: 'alice' }, { query: 1 })).allowed).toBe(true);
    expect((await refusals('mutation', 'token')) - tokenRefusalsBefore).toBe(1);
    expect((await refusals('mutation', 'tenant')) - tenantRefusalsBefore).toBe(1);
  });

  it('never admits more than the budget under 200 concurrent checks', async () => {
    const clock = manualClock(30_000);
    const limits = await limiter({
      budgets: budgets({ query: { perTenant: 50, perToken: 0 } }),
      now: clock.now,
    });
    const caller = { tenant: freshTenant(), subject: 'alice' };
    const answers = await Promise.all(Array.from({ length: 200 }, () => limits.check(caller, { query: 1 })));
    expect(answers.filter((a) => a.allowed)).toHaveLength(50);
    expect(answers.filter((a) => a.allowed && a.remaining === 0)).toHaveLength(1);
  });

  it('charges an ingest batch its events, and refuses outright a batch larger than the whole budget', async () => {
    const clock = manualClock(0);
    const limits = await limiter({
      budgets: budgets({ ingest: { perTenant: 100, perToken: 0 } }),
      now: clock.now,
    });
    const caller = { tenant: freshTenant(), subject: 'loader' };
    expect(await limits.check(caller, { ingest: 60 })).toMatchObject({ allowed: true, remaining: 40 });
    expect(await limits.check(caller, { ingest: 60 })).toMatchObject({
      allowed: false,
      remaining: 40,
      cost: 60,
    });
    expect(await limits.check(caller, { ingest: 40 })).toMatchObject({ allowed: true, remaining: 0 });
    const caller2 = { tenant: freshTenant(), subject: 'loader' };
    expect(await limits.check(caller2, { ingest: 101 })).toMatchObject({
      allowed: false,
      cost: 101,
      limit: 100,
      retryAfterSeconds: 60,
    });
    expect(await limits.check(caller2, { ingest: 100 })).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('checks nothing where the budgets are 0 (unlimited)', async () => {
    const limits = await limiter({ budgets: budgets({}) });
    const caller = { tenant: freshTenant(), subject: 'alice' };
    for (let i = 0; i < 3; i++) {
      expect(
        await limits.check(caller, { query: 1, mutation: 1, ingest: 10_000, subscription: 1 }),
      ).toMatchObject({
        allowed: true,
        limit: Infinity,
      });
    }
  });
});

describe('the limiter over Redis', () => {
  it('shares budgets between gateway instances', async () => {
    const clock = manualClock(1_000);
    const options = {
      budgets: budgets({ subscription: { perTenant: 4, perToken: 0 } }),
      redisUrl: services().redisUrl,
      logger: createLogger('rate-limit-test', 'silent'),
      now: clock.now,
    };
    const [one, two] = [await createRateLimiter(options), await createRateLimiter(options)];
    limiters.push(one, two);
    const caller = { tenant: freshTenant(), subject: 'alice' };
    const answers = [];
    for (let i = 0; i < 3; i++) {
      answers.push(
        await one.check(caller, { subscription: 1 }),
        await two.check(caller, { subscription: 1 }),
      );
    }
    expect(answers.map((a) => a.allowed)).toEqual([true, true, true, true, false, false]);
  });

  it('fails open when Redis is unreachable: admitted, warned once, counted', async () => {
    const warnings: string[] = [];
    const logger = {
      warn: (_details: unknown, message: string) => warnings.push(message),
    } as unknown as Logger;
    const limits = await createRateLimiter({
      budgets: budgets({ query: { perTenant: 1, perToken: 1 } }),
      redisUrl: `redis://127.0.0.1:${await freePort()}`,
      logger,
    });
    limiters.push(limits);
    const before = (await rateLimitMetrics.failOpen.get()).values[0]?.value ?? 0;
    const caller = { tenant: freshTenant(), subject: 'alice' };
    for (let i = 0; i < 3; i++) expect((await limits.check(caller, { query: 1 })).allowed).toBe(true);
    expect((await rateLimitMetrics.failOpen.get()).values[0]?.value).toBe(before + 3);
    expect(warnings.filter((w) => w.includes('admitted unchecked'))).toHaveLength(1);
  });
});

describe('what an operation costs', () => {
  const events = (n: number) => `[${Array.from({ length: n }, () => '{ name: "x" }').join(', ')}]`;

  it('is one of its type, and a mutation of ingestEvents only costs its events', () => {
    expect(chargeOf(parse('{ kpis { code } }'), undefined, {})).toEqual({ query: 1 });
    expect(chargeOf(parse('subscription { kpiUpdated(codes: ["a"]) { value } }'), undefined, {})).toEqual({
      subscription: 1,
    });
    expect(chargeOf(parse('mutation { defineKpi(input: {}) { code } }'), undefined, {})).toEqual({
      mutation: 1,
    });
    expect(
      chargeOf(parse(`mutation { ingestEvents(events: ${events(3)}) { accepted } }`), undefined, {}),
    ).toEqual({
      ingest: 3,
    });
  });

  it('counts events in variables, aliases and fragments, and charges a mixed mutation both ways', () => {
    const byVariable = parse('mutation ($e: [EventInput!]!) { ingestEvents(events: $e) { accepted } }');
    expect(chargeOf(byVariable, undefined, { e: [{}, {}, {}, {}] })).toEqual({ ingest: 4 });
    expect(chargeOf(byVariable, undefined, { e: [] })).toEqual({ ingest: 1 });
    const spread = parse(
      `mutation Both($e: [EventInput!]!) { a: ingestEvents(events: $e) { accepted } ...F }
       fragment F on Mutation { b: ingestEvents(events: ${events(2)}) { accepted } defineKpi(input: {}) { code } }
       query Other { kpis { code } }`,
    );
    expect(chargeOf(spread, 'Both', { e: [{}] })).toEqual({ ingest: 3, mutation: 1 });
    expect(chargeOf(spread, 'Other', {})).toEqual({ query: 1 });
  });
});
