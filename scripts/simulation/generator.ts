// Seeded, clock-free generation of e-commerce and SaaS events with daily and weekly seasonality.
import { EVENT_KINDS, type EventInput, type EventKind, type Segment } from './catalog.ts';

/** A small, fast 32-bit PRNG (mulberry32): the same seed gives the same sequence in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Random = () => number;

const HOUR_MS = 3_600_000;

/** A bell around `peak` (hours) on the 24-hour circle, so a peak at 23:00 also lifts 01:00. */
function bump(hour: number, peak: number, width: number): number {
  const distance = Math.min(Math.abs(hour - peak), 24 - Math.abs(hour - peak));
  return Math.exp(-(distance * distance) / (2 * width * width));
}

// Curves are in UTC, i.e. roughly the day of a European shop: quiet at night, a late-morning peak,
// and for the shop a stronger evening peak (people buy after work); SaaS traffic follows office hours.
const DAILY: Record<Segment, (hour: number) => number> = {
  shop: (h) => 0.12 + 0.7 * bump(h, 11, 2.2) + 0.35 * bump(h, 15, 2.5) + 1.0 * bump(h, 20.5, 2.3),
  saas: (h) => 0.08 + 1.0 * bump(h, 10.5, 2) + 0.85 * bump(h, 15, 2.2) + 0.25 * bump(h, 21, 2),
};

// Sunday first (Date#getUTCDay): shoppers come back at the weekend, SaaS users mostly do not.
const WEEKLY: Record<Segment, readonly number[]> = {
  shop: [1.2, 0.95, 0.92, 0.95, 1.0, 1.08, 1.25],
  saas: [0.4, 1.08, 1.12, 1.12, 1.08, 0.95, 0.42],
};

const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

// Divides each curve by its weekly mean, so that `--rate` is the average rate over a week.
const NORMALISER: Record<Segment, number> = {
  shop: mean(Array.from({ length: 288 }, (_, i) => DAILY.shop(i / 12))) * mean([...WEEKLY.shop]),
  saas: mean(Array.from({ length: 288 }, (_, i) => DAILY.saas(i / 12))) * mean([...WEEKLY.saas]),
};

/** The load of one business line at a moment, 1 being its weekly average. */
export function seasonalLoad(segment: Segment, time: Date): number {
  const hour = time.getUTCHours() + time.getUTCMinutes() / 60;
  return (DAILY[segment](hour) * WEEKLY[segment][time.getUTCDay()]!) / NORMALISER[segment];
}

const TOTAL_WEIGHT = EVENT_KINDS.reduce((sum, kind) => sum + kind.weight, 0);

/** The seasonal event rate at a moment for an average rate of `base` events/s. */
export function rateAt(base: number, time: Date): number {
  const load = EVENT_KINDS.reduce((sum, kind) => sum + kind.weight * seasonalLoad(kind.segment, time), 0);
  return (base * load) / TOTAL_WEIGHT;
}

/**
 * The strength of an API incident at a moment: 1 most of the time; in about one hour out of five a
 * few minutes where latency and errors climb, so anomaly detection has something to find. Derived
 * from the seed and the hour alone, so history and live traffic agree on when incidents were.
 */
export function incidentAt(seed: number, time: Date): number {
  const hourIndex = Math.floor(time.getTime() / HOUR_MS);
  const random = mulberry32((seed ^ Math.imul(hourIndex, 0x9e3779b1)) >>> 0);
  const happens = random() < 0.2;
  const startMinute = random() * 50;
  const minutes = 3 + random() * 9;
  const strength = 2.5 + random() * 2.5;
  const minute = (time.getTime() % HOUR_MS) / 60_000;
  return happens && minute >= startMinute && minute < startMinute + minutes ? strength : 1;
}

function weighted<T>(random: Random, entries: ReadonlyArray<readonly [T, number]>): T {
  let left = random() * entries.reduce((sum, [, weight]) => sum + weight, 0);
  for (const [value, weight] of entries) {
    left -= weight;
    if (left < 0) return value;
  }
  return entries[entries.length - 1]![0];
}

/** A standard normal draw (Box-Muller). */
function gaussian(random: Random): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

const cents = (value: number) => Math.round(value * 100) / 100;
const hex = (random: Random) =>
  Math.floor(random() * 0x1_0000_0000)
    .toString(16)
    .padStart(8, '0');

const COUNTRIES = [
  ['DE', 30],
  ['US', 20],
  ['FR', 18],
  ['GB', 14],
  ['NL', 10],
  ['ES', 8],
] as const;

// Median basket in EUR per country; amounts spread log-normally around it.
const MEDIAN_ORDER_EUR: Record<(typeof COUNTRIES)[number][0], number> = {
  DE: 64,
  US: 78,
  FR: 58,
  GB: 69,
  NL: 55,
  ES: 46,
};

const DEVICES = [
  ['desktop', 50],
  ['mobile', 42],
  ['tablet', 8],
] as const;

const PATHS = [
  ['/', 20],
  ['/products', 25],
  ['/products/detail', 30],
  ['/search', 10],
  ['/cart', 8],
  ['/checkout', 4],
  ['/account', 3],
] as const;

const CHANNELS = [
  ['organic', 38],
  ['direct', 25],
  ['paid', 20],
  ['email', 9],
  ['social', 8],
] as const;

const PAYMENTS = [
  ['card', 45],
  ['paypal', 30],
  ['klarna', 15],
  ['apple_pay', 10],
] as const;

const PLANS = [
  ['free', 70],
  ['pro', 22],
  ['team', 7],
  ['enterprise', 1],
] as const;

// [endpoint, method, share of requests, median latency in ms]
const ENDPOINTS = [
  ['/graphql', 'POST', 40, 45],
  ['/v1/products', 'GET', 30, 28],
  ['/v1/search', 'GET', 15, 110],
  ['/v1/orders', 'POST', 8, 170],
  ['/v1/auth/login', 'POST', 5, 210],
  ['/v1/reports', 'GET', 2, 380],
] as const;
const ENDPOINT_MIX = ENDPOINTS.map((endpoint) => [endpoint, endpoint[2]] as const);

const CLIENT_ERRORS = [
  [400, 3],
  [401, 2],
  [404, 4],
  [429, 1],
] as const;

const SERVER_ERRORS = [
  [500, 5],
  [502, 2],
  [503, 2],
  [504, 1],
] as const;

/** What a generator needs. */
export interface GeneratorOptions {
  seed: number;
  /** Where `advance` starts its clock (default: the first `advance` only sets the clock). */
  startTime?: Date;
  /** How many distinct shoppers exist, so DISTINCT_COUNT has a ceiling (default 10 000). */
  users?: number;
}

/** A seeded event source. */
export interface Generator {
  /** `count` events for the moment `time`, spread over the `spreadMs` before it, oldest first. */
  eventsAt(time: Date, count: number, spreadMs?: number): EventInput[];
  /** The events due between the generator's clock and `to` at an average of `baseRate`/s; moves the clock. */
  advance(to: Date, baseRate: number): EventInput[];
}

/** Creates a generator whose events depend only on the seed and the times asked for. */
export function createGenerator(options: GeneratorOptions): Generator {
  const random = mulberry32(options.seed);
  const users = options.users ?? 10_000;
  // Each shopper keeps one country and a favourite device, so per-country distinct users are stable.
  const userRandom = mulberry32(options.seed ^ 0x5eed);
  const userCountry = Array.from({ length: users }, () => weighted(userRandom, COUNTRIES));
  const userDevice = Array.from({ length: users }, () => weighted(userRandom, DEVICES));
  let clock = options.startTime?.getTime();
  let carry = 0;

  const pickUser = () => {
    // Squaring skews towards low indices: a few regulars, a long tail of occasional visitors.
    const index = Math.floor(users * random() ** 2);
    const device = random() < 0.8 ? userDevice[index]! : weighted(random, DEVICES);
    return { userId: `u-${String(index).padStart(5, '0')}`, country: userCountry[index]!, device };
  };
  const webSource = (device: string) => (device === 'mobile' && random() < 0.6 ? 'mobile' : 'web');

  // A visitor's page view or session: who, from where, on which device, plus what the kind adds.
  const webVisit = (extra: () => Record<string, unknown>) => {
    const user = pickUser();
    return {
      source: webSource(user.device),
      attributes: { user_id: user.userId, country: user.country, device: user.device, ...extra() },
    };
  };

  const attributesOf = (
    kind: EventKind,
    time: Date,
  ): { source: string; attributes: Record<string, unknown> } => {
    switch (kind.name) {
      case 'page.viewed':
        return webVisit(() => ({ path: weighted(random, PATHS) }));
      case 'session.started':
        return webVisit(() => ({ channel: weighted(random, CHANNELS) }));
      case 'checkout.completed': {
        const user = pickUser();
        const hour = time.getUTCHours();
        const weekend = time.getUTCDay() === 0 || time.getUTCDay() === 6;
        // Evening and weekend baskets run a little larger.
        const lift = (hour >= 18 && hour <= 23 ? 1.08 : 1) * (weekend ? 1.06 : 1);
        const amount = Math.max(
          0.99,
          cents(MEDIAN_ORDER_EUR[user.country] * lift * Math.exp(0.55 * gaussian(random))),
        );
        const inStore = random() < 0.08;
        return {
          source: inStore ? `pos-${1 + Math.floor(random() * 12)}` : webSource(user.device),
          attributes: {
            order_id: `o-${hex(random)}`,
            user_id: user.userId,
            country: user.country,
            amount,
            currency: 'EUR',
            items: Math.max(1, Math.round(amount / (20 + random() * 30))),
            payment: weighted(random, PAYMENTS),
          },
        };
      }
      case 'user.signed_up':
        return {
          source: random() < 0.85 ? 'web' : 'mobile',
          attributes: {
            user_id: `u-${hex(random)}`,
            plan: weighted(random, PLANS),
            country: weighted(random, COUNTRIES),
          },
        };
      case 'api.request': {
        const [endpoint, method, , median] = weighted(random, ENDPOINT_MIX);
        // Latency grows with load and during incidents; a few requests hit a slow path.
        const load = 0.85 + 0.25 * seasonalLoad('saas', time);
        const outlier = random() < 0.015 ? 4 + random() * 12 : 1;
        const latency =
          median * load * incidentAt(options.seed, time) * outlier * Math.exp(0.45 * gaussian(random));
        const created = endpoint === '/v1/orders' ? 201 : 200;
        const status = random() < 0.03 ? weighted(random, CLIENT_ERRORS) : created;
        return {
          source: 'api',
          attributes: { endpoint, method, status, latency_ms: Math.round(latency * 10) / 10 },
        };
      }
      case 'api.error': {
        const [endpoint] = weighted(random, ENDPOINT_MIX);
        const status = weighted(random, SERVER_ERRORS);
        return {
          source: 'api',
          attributes: { endpoint, status, error: status === 504 ? 'upstream timeout' : 'internal error' },
        };
      }
      default:
        throw new Error(`the generator has no attributes for event kind "${kind.name}"`);
    }
  };

  const eventsAt = (time: Date, count: number, spreadMs = 0): EventInput[] => {
    const incident = incidentAt(options.seed, time);
    const mix = EVENT_KINDS.map(
      (kind) =>
        [
          kind,
          kind.weight * seasonalLoad(kind.segment, time) * (kind.name === 'api.error' ? incident ** 2 : 1),
        ] as const,
    );
    const end = time.getTime();
    const times = Array.from({ length: count }, () => end - Math.floor(random() * spreadMs)).sort(
      (a, b) => a - b,
    );
    return times.map((ms) => {
      const at = new Date(ms);
      const kind = weighted(random, mix);
      const { source, attributes } = attributesOf(kind, at);
      return { type: kind.type, name: kind.name, source, timestamp: at.toISOString(), attributes };
    });
  };

  const advance = (to: Date, baseRate: number): EventInput[] => {
    const events: EventInput[] = [];
    const target = to.getTime();
    clock ??= target;
    // Steps of at most a minute, so a long stretch (a backfill) still follows the curve.
    while (clock < target) {
      const step = Math.min(60_000, target - clock);
      const expected = rateAt(baseRate, new Date(clock + step / 2)) * (step / 1000) + carry;
      const count = Math.floor(expected);
      carry = expected - count;
      clock += step;
      for (const event of eventsAt(new Date(clock), count, step)) events.push(event);
    }
    return events;
  };

  return { eventsAt, advance };
}
