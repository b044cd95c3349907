// npm run simulate -- [--rate N] [--duration S] ...: drives seasonal shop and SaaS events through the public API.
import { randomBytes, randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { TENANT_PATTERN } from '../lib/auth.ts';
import { signDevToken } from '../lib/devKeys.ts';
import { MAX_BATCH_EVENTS } from '../lib/events.ts';
import { KPIS, type EventInput } from './simulation/catalog.ts';
import { createGenerator, mulberry32, rateAt } from './simulation/generator.ts';

const USAGE = `usage: npm run simulate -- [options]
  --rate N       average events per second (default 50); the daily and weekly curve swings around it
  --duration S   stop after S seconds of live traffic (default: until Ctrl-C)
  --backfill H   first send H hours of history, as fast as the API accepts
  --url URL      GraphQL endpoint (default http://127.0.0.1:$GATEWAY_PORT/graphql, port 4000)
  --tenant T     tenant of the minted dev token (default acme)
  --token JWT    bearer token to send instead of minting an admin dev token from $DATA_DIR (.data)
  --batch N      most events per ingestEvents request (default 200)
  --seed N       seed of the event stream, for a reproducible run (default: random)
  -h, --help     show this help`;

const TICK_MS = 250;
const REPORT_MS = 5_000;
const MAX_IN_FLIGHT = 4;
const MAX_ATTEMPTS = 6;
const REQUEST_TIMEOUT_MS = 15_000;
const FLUSH_MS = 10_000;
// A few events are sent twice, as a mobile client does after a lost answer, so deduplication shows.
const RESEND_SHARE = 0.005;
// Codes worth a retry: the platform is busy or briefly down, not the request wrong.
const RETRYABLE = new Set([
  'SERVICE_UNAVAILABLE',
  'RATE_LIMITED',
  'INTERNAL_SERVER_ERROR',
  'NETWORK',
  'HTTP',
]);

const INGEST = `mutation SimulateIngest($events: [EventInput!]!) {
  ingestEvents(events: $events) { accepted duplicates rejected { index message } }
}`;
const DEFINE = `mutation SimulateDefineKpi($input: KpiInput!) { defineKpi(input: $input) { code } }`;

/** A command line that cannot be run. */
class UsageError extends Error {}

/** One failed request: a stable code, and whether the same request may succeed later. */
class RequestFailure extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }
}

interface Options {
  rate: number;
  durationMs: number | undefined;
  backfillMs: number;
  url: string;
  tenant: string;
  token: string | undefined;
  batch: number;
  seed: number;
}

function number(
  name: string,
  text: string | undefined,
  fallback: number,
  { integer = false, max = Infinity } = {},
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (
    !text.trim() ||
    !Number.isFinite(value) ||
    value <= 0 ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    const kind = integer ? 'a positive integer' : 'a positive number';
    throw new UsageError(
      `--${name} expects ${kind}${max < Infinity ? ` up to ${max}` : ''}, but got "${text}"`,
    );
  }
  return value;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rate: { type: 'string' },
      duration: { type: 'string' },
      backfill: { type: 'string' },
      url: { type: 'string' },
      tenant: { type: 'string', default: 'acme' },
      token: { type: 'string' },
      batch: { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (!TENANT_PATTERN.test(values.tenant)) {
    throw new UsageError(`--tenant expects letters, digits, "_" or "-", but got "${values.tenant}"`);
  }
  const url = values.url ?? `http://127.0.0.1:${process.env['GATEWAY_PORT'] ?? 4000}/graphql`;
  if (!URL.canParse(url)) throw new UsageError(`--url expects an http(s) URL, but got "${url}"`);
  const duration = values.duration === undefined ? undefined : number('duration', values.duration, 0);
  const seed = values.seed === undefined ? randomInt(2 ** 31) : Number(values.seed);
  if (!Number.isSafeInteger(seed))
    throw new UsageError(`--seed expects an integer, but got "${values.seed}"`);
  return {
    rate: number('rate', values.rate, 50, { max: 100_000 }),
    durationMs: duration === undefined ? undefined : duration * 1000,
    backfillMs: number('backfill', values.backfill, 0, { max: 24 * 400 }) * 3_600_000,
    url,
    tenant: values.tenant,
    token: values.token,
    batch: number('batch', values.batch, 200, { integer: true, max: MAX_BATCH_EVENTS }),
    seed,
  };
}

/** Waits, or stops waiting early when the signal fires. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Why a fetch did not get an answer, in the words of the socket (e.g. connect ECONNREFUSED 127.0.0.1:4000). */
function networkReason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError')
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  if (error instanceof Error && error.name === 'AbortError') return 'stopped';
  const cause = error instanceof Error ? (error.cause as { message?: string } | undefined) : undefined;
  return cause?.message ?? (error instanceof Error ? error.message : String(error));
}

/** Posts one GraphQL operation; returns its data or throws a RequestFailure. */
async function graphql<T>(
  options: Options,
  token: string,
  query: string,
  variables: Record<string, unknown>,
  signal: AbortSignal,
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
    });
  } catch (error) {
    throw new RequestFailure('NETWORK', networkReason(error));
  }
  const text = await response.text().catch(() => '');
  let body: { data?: T | null; errors?: Array<{ message?: string; extensions?: { code?: string } }> };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    const code = response.status >= 500 || response.status === 429 ? 'HTTP' : 'HTTP_CLIENT';
    throw new RequestFailure(code, `HTTP ${response.status}: ${text.slice(0, 120) || response.statusText}`);
  }
  const first = body.errors?.[0];
  if (first || !body.data) {
    const code = first?.extensions?.code ?? (response.status >= 500 ? 'HTTP' : 'UNKNOWN');
    throw new RequestFailure(code, first?.message ?? `HTTP ${response.status} without data`);
  }
  return body.data;
}

/** Counters of one run (or of one report interval). */
interface Tally {
  sent: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  errors: number;
  dropped: number;
}

const emptyTally = (): Tally => ({ sent: 0, accepted: 0, duplicates: 0, rejected: 0, errors: 0, dropped: 0 });

function describeTally(tally: Tally): string {
  const dropped = tally.dropped ? `  dropped ${tally.dropped}` : '';
  return (
    `sent ${tally.sent}  accepted ${tally.accepted}  duplicates ${tally.duplicates}` +
    `  rejected ${tally.rejected}  errors ${tally.errors}${dropped}`
  );
}

const clockTime = () => new Date().toISOString().slice(11, 19);
const say = (line: string) => process.stdout.write(`${line}\n`);
const warn = (line: string) => process.stderr.write(`${line}\n`);

async function run(options: Options): Promise<number> {
  // Ask /healthz first: a dead gateway gets one clear line before anything else happens.
  try {
    await fetch(new URL('/healthz', options.url), { signal: AbortSignal.timeout(5_000) });
  } catch (error) {
    warn(
      `simulate: cannot reach the gateway at ${options.url} (${networkReason(error)}); is \`npm start\` running?`,
    );
    return 1;
  }

  // A minted token is renewed hourly, so a simulation can outlive any one token.
  let minted = { token: '', at: 0 };
  const currentToken = async () => {
    if (options.token) return options.token;
    if (Date.now() - minted.at > 3_600_000) {
      const dataDir = process.env['DATA_DIR'] ?? '.data';
      const claims = { tenant: options.tenant, roles: ['admin'], expiresIn: '2h' };
      minted = { token: await signDevToken(dataDir, claims), at: Date.now() };
    }
    return minted.token;
  };
  const stop = new AbortController(); // first Ctrl-C: stop generating, flush what is queued
  const hardStop = new AbortController(); // second Ctrl-C or flush timeout: abandon requests
  const onSignal = () => (stop.signal.aborted ? hardStop.abort() : stop.abort());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let defined = 0;
  for (const kpi of KPIS) {
    try {
      await graphql(options, await currentToken(), DEFINE, { input: kpi }, hardStop.signal);
      defined++;
    } catch (error) {
      warn(
        `warning: defineKpi ${kpi.code} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  say(`defined ${defined} of ${KPIS.length} KPIs for tenant ${options.tenant}`);

  const runId = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const resendRandom = mulberry32(options.seed ^ 0x7e5e4d);
  const totals = emptyTally();
  let interval = emptyTally();
  const seenErrors = new Set<string>();
  const queue: EventInput[] = [];
  let resends: EventInput[] = [];
  let nextId = 0;
  let inFlight = 0;
  let phase = 'live';

  const count = (key: keyof Tally, n: number) => {
    totals[key] += n;
    interval[key] += n;
  };
  const reportOnce = (what: string, message: string) => {
    if (seenErrors.has(message) || seenErrors.size >= 10) return;
    seenErrors.add(message);
    warn(`${what}: ${message}`);
  };

  const sendBatch = async (batch: EventInput[]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const { ingestEvents: result } = await graphql<{
          ingestEvents: {
            accepted: number;
            duplicates: number;
            rejected: Array<{ index: number; message: string }>;
          };
        }>(options, await currentToken(), INGEST, { events: batch }, hardStop.signal);
        count('sent', batch.length);
        count('accepted', result.accepted);
        count('duplicates', result.duplicates);
        count('rejected', result.rejected.length);
        const first = result.rejected[0];
        if (first)
          reportOnce('rejected', `${first.message} (event ${JSON.stringify(batch[first.index]?.name)})`);
        return;
      } catch (error) {
        const failure =
          error instanceof RequestFailure ? error : new RequestFailure('UNKNOWN', String(error));
        if (failure.retryable && attempt < MAX_ATTEMPTS && !hardStop.signal.aborted) {
          // Same batch, same ids: a retry of a batch that did land only finds duplicates.
          await pause(
            Math.min(8_000, 500 * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2),
            hardStop.signal,
          );
          continue;
        }
        count('sent', batch.length);
        count('errors', batch.length);
        reportOnce('error', `ingestEvents failed: [${failure.code}] ${failure.message}`);
        return;
      }
    }
  };

  const pump = () => {
    while (inFlight < MAX_IN_FLIGHT && queue.length && !hardStop.signal.aborted) {
      inFlight++;
      void sendBatch(queue.splice(0, options.batch)).finally(() => {
        inFlight--;
        pump();
      });
    }
  };

  const enqueue = (events: EventInput[]) => {
    for (const event of resends) queue.push(event);
    resends = [];
    for (const event of events) {
      // Stable ids make every retry and resend idempotent.
      event.id = `sim-${runId}-${nextId++}`;
      queue.push(event);
      if (phase === 'live' && resendRandom() < RESEND_SHARE) resends.push(event);
    }
    // A gateway slower than the live rate must not make the simulator grow without bound
    // (the backfill waits for room instead).
    const limit = Math.max(options.batch * MAX_IN_FLIGHT * 4, options.rate * 30);
    if (phase === 'live' && queue.length > limit) {
      const excess = queue.length - limit;
      queue.splice(0, excess);
      count('dropped', excess);
    }
    pump();
  };

  let lastReport = Date.now();
  const reporter = setInterval(() => {
    const now = Date.now();
    const achieved = interval.sent / ((now - lastReport) / 1000);
    const target = phase === 'live' ? `target ${rateAt(options.rate, new Date(now)).toFixed(1)}` : phase;
    say(`${clockTime()} ${describeTally(totals)}  | ${achieved.toFixed(1)} ev/s (${target})`);
    interval = emptyTally();
    lastReport = now;
  }, REPORT_MS);

  const started = Date.now();
  const generator = createGenerator({
    seed: options.seed,
    startTime: new Date(started - options.backfillMs),
  });
  say(
    `simulating tenant ${options.tenant} at ~${options.rate} ev/s (seed ${options.seed}, run ${runId}) -> ${options.url}` +
      `${options.durationMs ? ` for ${options.durationMs / 1000} s` : ''}; Ctrl-C to stop`,
  );

  if (options.backfillMs) {
    // History in one-minute steps, each sent once the queue has room, until the clock reaches now.
    const from = started - options.backfillMs;
    for (let clock = from; Date.now() - clock > 5_000 && !stop.signal.aborted; clock += 60_000) {
      phase = `backfill ${Math.min(100, ((clock - from) / options.backfillMs) * 100).toFixed(0)}%`;
      enqueue(generator.advance(new Date(Math.min(clock + 60_000, Date.now())), options.rate));
      while (queue.length > options.batch * MAX_IN_FLIGHT && !stop.signal.aborted) await pause(20);
    }
    phase = 'live';
  }

  const liveStart = Date.now();
  while (
    !stop.signal.aborted &&
    (options.durationMs === undefined || Date.now() - liveStart < options.durationMs)
  ) {
    enqueue(generator.advance(new Date(), options.rate));
    await pause(TICK_MS, stop.signal);
  }

  // Flush what is queued, unless a second Ctrl-C or the deadline says otherwise.
  const deadline = setTimeout(() => hardStop.abort(), FLUSH_MS);
  if (resends.length) enqueue([]);
  while ((queue.length || inFlight) && !hardStop.signal.aborted) await pause(20);
  while (inFlight) await pause(20);
  clearTimeout(deadline);
  clearInterval(reporter);
  count('dropped', queue.length);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);

  const seconds = (Date.now() - started) / 1000;
  say(
    `totals: ${describeTally(totals)} in ${seconds.toFixed(1)} s (${(totals.sent / seconds).toFixed(1)} ev/s)`,
  );
  if (!totals.accepted) {
    warn('simulate: no event was accepted');
    return 1;
  }
  return 0;
}

try {
  const options = parseOptions(process.argv.slice(2));
  if (options === 'help') {
    say(USAGE);
    process.exit(0);
  }
  process.exit(await run(options));
} catch (error) {
  // parseArgs throws TypeErrors with codes such as ERR_PARSE_ARGS_UNKNOWN_OPTION.
  const usage =
    error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  if (!usage) throw error;
  warn(`simulate: ${(error as Error).message} (see --help)`);
  process.exit(2);
}
