// The subscription engine over a nats-server of this file's own and the committed supergraph: a feed that
// cannot start (nats-server stalled) refuses its subscriber without poisoning the next one, and a group
// whose live feed ends for good (here its NATS connection is closed) ends its subscribers with a clear
// error after what they were given, instead of leaving them waiting on a feed that sends nothing more.
import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../lib/auth.ts';
import { createLogger } from '../../lib/logger.ts';
import { connectBroker, type Broker } from '../../streams/connection.ts';
import { StreamFeeds } from '../../streams/feeds.ts';
import { useOwnNats } from '../../test/support/ownNats.ts';
import { loadSupergraph } from '../execution/supergraph.ts';
import { SubscriptionEngine } from './engine.ts';
import { subscriptionMetrics } from './metrics.ts';
import { Outbox, type Delivery } from './outbox.ts';

const supergraph = loadSupergraph(readFileSync(new URL('../../supergraph.graphql', import.meta.url), 'utf8'));
const principal: Principal = {
  tenant: 'acme',
  subject: 'tester',
  roles: ['viewer'],
  scopes: ['read', 'subscribe'],
};
const document = parse('subscription { newInsights(context: "checkout") { id title } }');

const groups = async () => (await subscriptionMetrics.groups.get()).values[0]?.value ?? 0;

/** A refusal of a subscription: one error whose code says to try again later. */
const UNAVAILABLE: unknown = {
  errors: [
    expect.objectContaining({
      extensions: expect.objectContaining({ code: 'SERVICE_UNAVAILABLE' }) as unknown,
    }),
  ],
};

/** The next result an outbox yields, as its subscriber reads it. */
async function next(outbox: Outbox): Promise<unknown> {
  const read: IteratorResult<Delivery, unknown> = await outbox.next();
  if (read.done) throw new Error('the subscription ended');
  return JSON.parse(read.value.json());
}

/** Everything an outbox yields until it ends. */
async function drain(outbox: Outbox): Promise<Delivery['result'][]> {
  const results: Delivery['result'][] = [];
  for await (const delivery of outbox) results.push(JSON.parse(delivery.json()) as Delivery['result']);
  return results;
}

describe('SubscriptionEngine when a live feed ends', () => {
  const own = useOwnNats('engine');
  let closing: Broker;
  let engine: SubscriptionEngine;

  beforeAll(async () => {
    closing = await connectBroker(own.nats.url, 'engine-feeds-test');
    const logger = createLogger('test', 'fatal', 'json');
    engine = new SubscriptionEngine({
      feeds: new StreamFeeds(closing.nc, closing.js, logger),
      fetch: () => Promise.reject(new Error('no subgraph is asked here')),
      upstream: {} as never,
      logger,
      capacity: 100,
    });
  });

  afterAll(() => engine?.close());

  const subscribe = () =>
    engine.subscribe({
      supergraph,
      document,
      variables: {},
      principal,
      caller: {},
      transport: 'ws',
      onOverflow: () => undefined,
    });

  it('refuses with SERVICE_UNAVAILABLE while nats-server is stalled, and serves the next subscriber once it answers', async () => {
    const before = await groups();
    process.kill(own.nats.pid!, 'SIGSTOP');
    let refused: Awaited<ReturnType<typeof subscribe>>;
    try {
      refused = await subscribe(); // its feed's first JetStream request times out (5 s)
    } finally {
      process.kill(own.nats.pid!, 'SIGCONT');
    }
    expect(refused).toEqual(UNAVAILABLE);
    expect(await groups()).toBe(before); // the group that could not start is forgotten
    const served = await subscribe();
    if (!(served instanceof Outbox)) throw new Error(`refused again: ${JSON.stringify(served)}`);
    const insight = { id: 'ins-0', context: 'checkout', title: 'Checkout is back' };
    await own.broker.js.publish('insights.acme.checkout', JSON.stringify({ payload: insight }));
    expect(await next(served)).toEqual({ data: { newInsights: { id: 'ins-0', title: 'Checkout is back' } } });
    await served.return();
    expect(await groups()).toBe(before);
  }, 20_000);

  it('delivers what came before, then SERVICE_UNAVAILABLE and the end to every member, and drops the group', async () => {
    const before = await groups();
    const first = await subscribe();
    const second = await subscribe();
    if (!(first instanceof Outbox) || !(second instanceof Outbox)) throw new Error('refused');
    expect(await groups()).toBe(before + 1); // one group for both
    const insight = { id: 'ins-1', context: 'checkout', title: 'Checkout is 3x its level' };
    await own.broker.js.publish('insights.acme.checkout', JSON.stringify({ payload: insight }));
    const live = { data: { newInsights: { id: 'ins-1', title: 'Checkout is 3x its level' } } };
    expect(await next(first)).toEqual(live);
    expect(await next(second)).toEqual(live);
    await closing.close();
    const end = [{ errors: [expect.objectContaining({ extensions: { code: 'SERVICE_UNAVAILABLE' } })] }];
    expect(await drain(first)).toEqual(end);
    expect(await drain(second)).toEqual(end);
    expect(await groups()).toBe(before);
    // A subscription started now is refused at once (the feed cannot start on a closed connection).
    const late = await subscribe();
    expect(late).toEqual(UNAVAILABLE);
  });
});
