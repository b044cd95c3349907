import { z } from 'zod';

/** Thrown when a setting is missing or malformed; its message is the one line printed at start. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

// 0 asks the OS for a free port (tests use it).
const port = z.coerce.number().int().min(0).max(65535);
const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
  );

// "true"/"false" (also 1/0, yes/no), as environment variables spell booleans.
const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((value) => ['true', '1', 'yes'].includes(value));

// A comma-separated list ("a, b,c"), empty by default.
const commaList = z
  .string()
  .default('')
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  );

// A rate-limit budget per minute; 0 turns that budget off.
const budget = z.coerce.number().int().min(0);

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Log lines as JSON (default; production) or pretty (default only in development on a terminal).
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  // OTLP/HTTP collector that receives every process's spans (`<endpoint>/v1/traces`); unset: no tracing.
  OTEL_EXPORTER_OTLP_ENDPOINT: url(['http:', 'https:']).optional(),
  // Port of a worker process's own /metrics and /healthz listener (writer, calculator, ...); unset: none.
  METRICS_LISTEN_PORT: port.optional(),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('.data'),
  GATEWAY_PORT: port.default(4000),
  METADATA_PORT: port.default(4001),
  METRICS_PORT: port.default(4002),
  REPORTS_PORT: port.default(4003),
  INSIGHTS_PORT: port.default(4004),
  SUPERGRAPH_PATH: z.string().min(1).default('supergraph.graphql'),
  // How often the gateway checks SUPERGRAPH_PATH for a new supergraph (0 = never: restart to change).
  SUPERGRAPH_POLL_MS: z.coerce.number().int().min(0).max(3_600_000).default(2_000),
  // The built dashboard (vite build) the gateway serves at / and /assets/ (npm start builds it when stale).
  DASHBOARD_DIR: z.string().min(1).default('dashboard/dist'),
  SUBGRAPH_METADATA_URL: url(['http:', 'https:']).optional(),
  SUBGRAPH_METRICS_URL: url(['http:', 'https:']).optional(),
  SUBGRAPH_REPORTS_URL: url(['http:', 'https:']).optional(),
  SUBGRAPH_INSIGHTS_URL: url(['http:', 'https:']).optional(),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATABASE_ADMIN_URL: url(['postgres:', 'postgresql:']).optional(),
  // A read replica of DATABASE_URL for reads that tolerate a little lag (db/readPool.ts, docs/scaling.md).
  DATABASE_READ_URL: url(['postgres:', 'postgresql:']).optional(),
  DATABASE_APP_PASSWORD: z.string().min(8).optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  NATS_URL: url(['nats:', 'tls:']).optional(),
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  AUTH_MODE: z.enum(['dev', 'jwt']).default('jwt'),
  // Dev auth signs tokens with a key anyone on the machine can read: production refuses it unless told.
  ALLOW_DEV_AUTH_IN_PRODUCTION: flag.default(false),
  JWT_JWKS_URL: url(['http:', 'https:']).optional(),
  JWT_PUBLIC_KEY: z
    .string()
    .includes('BEGIN PUBLIC KEY', { message: 'expected a PEM public key' })
    .optional(),
  JWT_ISSUER: z.string().min(1).default('pulsegraph'),
  JWT_AUDIENCE: z.string().min(1).default('pulsegraph'),
  SUBGRAPH_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  // Consecutive transport failures to one subgraph after which the gateway fails its fetches fast (circuit open).
  SUBGRAPH_CIRCUIT_FAILURES: z.coerce.number().int().min(1).max(1_000).default(5),
  // How long an open circuit fails fast before one probe fetch is let through (half-open).
  SUBGRAPH_CIRCUIT_COOLDOWN_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  // Retries (exponential backoff from 50 ms) of a query fetch that could not reach its subgraph; mutations are never retried.
  SUBGRAPH_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  // Identical query fetches in flight to a subgraph (operation, variables, Authorization) share one request.
  SUBGRAPH_DEDUPE: flag.default(true),
  // Subgraphs (comma-separated names, * = all) that take batched requests (a JSON array of operations):
  // a request's fetches to one of them in one wave of its plan go out as one HTTP request. Ours all do.
  SUBGRAPH_BATCHING: commaList.pipe(
    z.array(z.string().regex(/^(\*|[A-Za-z_][A-Za-z0-9_-]*)$/, { message: 'expected subgraph names or *' })),
  ),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
  // On SIGTERM the gateway answers /readyz 503 and keeps serving this long before it stops listening (load balancers see it leave).
  SHUTDOWN_DRAIN_DELAY_MS: z.coerce.number().int().min(0).max(60_000).default(0),
  // Browser origins allowed to call the gateway (comma-separated, e.g. https://app.example.com; * = any).
  CORS_ORIGINS: commaList.pipe(
    z.array(
      z.string().refine((origin) => origin === '*' || /^https?:\/\/[^/]+$/.test(origin), {
        message: 'expected origins like https://app.example.com, comma-separated',
      }),
    ),
  ),
  // Largest GraphQL request body (POST /graphql, SSE): larger ones get 413 before any parsing.
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
  // Longest URL of a GET /graphql request (query, variables and extensions in the query string): 414.
  // Node refuses request heads over 16 KiB with 431 before any of this.
  MAX_URL_BYTES: z.coerce.number().int().min(256).max(65_536).default(8_192),
  // Whether introspection (__schema, __type) is served; default: yes, except in production.
  INTROSPECTION: flag.optional(),
  // Largest body POST /events reads (default 10 MiB); larger ones get 413 before any parsing.
  INGEST_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(10_485_760),
  // graphql-ws: time a client has to send connection_init, and the largest message it may send.
  WS_CONNECTION_INIT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(3_000),
  WS_MAX_MESSAGE_BYTES: z.coerce.number().int().min(1024).default(262_144),
  // graphql-ws: each socket is pinged this often, and terminated when no pong came within as long again
  // (a peer gone without a close); 0 turns pings off. Each ping is a write and a read per socket.
  WS_KEEPALIVE_MS: z.coerce.number().int().min(0).max(3_600_000).default(12_000),
  // Results a subscriber may have queued (after conflation) before it is closed as too slow.
  SUBSCRIBER_QUEUE_LIMIT: z.coerce.number().int().min(4).max(1_000_000).default(1_000),
  // Subscriptions one graphql-ws connection may run at once; the next is refused (MAX_SUBSCRIPTIONS_EXCEEDED).
  MAX_SUBSCRIPTIONS_PER_CONNECTION: z.coerce.number().int().min(1).max(100_000).default(200),
  // Operation limits of the gateway (gateway/plugins/useOperationLimits.ts), over HTTP, graphql-ws and SSE.
  MAX_DEPTH: z.coerce.number().int().min(1).max(100).default(12),
  MAX_ALIASES: z.coerce.number().int().min(0).max(1_000).default(30),
  MAX_ROOT_FIELDS: z.coerce.number().int().min(1).max(1_000).default(20),
  MAX_TOKENS: z.coerce.number().int().min(100).max(50_000).default(5_000),
  MAX_DIRECTIVES: z.coerce.number().int().min(0).max(1_000).default(50),
  MAX_COST: z.coerce.number().int().min(1).default(5_000),
  // Rate limits (gateway/rateLimit.ts), per sliding minute, per tenant and per token (JWT sub); 0 = unlimited.
  RATE_LIMIT_QUERIES_PER_MINUTE: budget.default(12_000),
  RATE_LIMIT_QUERIES_PER_MINUTE_PER_TOKEN: budget.default(6_000),
  RATE_LIMIT_MUTATIONS_PER_MINUTE: budget.default(3_000),
  RATE_LIMIT_MUTATIONS_PER_MINUTE_PER_TOKEN: budget.default(1_500),
  // Ingested events (ingestEvents and POST /events), counted one per event.
  RATE_LIMIT_INGEST_EVENTS_PER_MINUTE: budget.default(6_000_000),
  RATE_LIMIT_INGEST_EVENTS_PER_MINUTE_PER_TOKEN: budget.default(3_000_000),
  // Subscription starts over graphql-ws and SSE (a resume counts as a start).
  RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE: budget.default(10_000),
  RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE_PER_TOKEN: budget.default(5_000),
  // In any 250 ms a caller may spend this multiple of a budget's average rate (at least 5 operations), for
  // queries and mutations: a minute's budget cannot be spent in a second. 0 = off.
  RATE_LIMIT_BURST: z.coerce.number().min(0).max(60).default(5),
  // A caller that comes back before its Retry-After is answered 429 after this long (at most until the
  // Retry-After): a client that ignores Retry-After sends one request per connection per delay. 0 = at once.
  RATE_LIMIT_REFUSAL_DELAY_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  // Persisted operations (gateway/persistedOperations.ts): the codegen manifest, { "<sha256 hex>": "<document>" }.
  PERSISTED_OPERATIONS_PATH: z.string().min(1).default('dashboard/src/gql/persisted-documents.json'),
  // Only the manifest's operations run (by documentId, APQ hash or exact text); the manifest must load.
  PERSISTED_ONLY: flag.default(false),
  // How long an APQ registration lives (Redis key apq:<hash>, or the in-memory LRU without REDIS_URL).
  APQ_TTL_SECONDS: z.coerce.number().int().min(1).max(31_536_000).default(86_400),
});

/** The validated settings of runtime.md, shared by every process. */
export type Config = z.infer<typeof schema>;

/** Names of the settings a process may require to be present. */
export type RequiredSetting = 'DATABASE_URL' | 'NATS_URL' | 'REDIS_URL';

/** Parses the environment; throws a ConfigError naming the first bad setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, required: RequiredSetting[] = []): Config {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    const got = name in cleaned ? `got ${JSON.stringify(cleaned[name])}` : 'it is not set';
    throw new ConfigError(`invalid setting ${name}: ${issue.message} (${got})`);
  }
  const config = parsed.data;
  for (const name of required) {
    if (!config[name]) throw new ConfigError(`missing setting ${name}: this process needs it`);
  }
  if (config.AUTH_MODE === 'jwt' && !config.JWT_JWKS_URL && !config.JWT_PUBLIC_KEY) {
    throw new ConfigError('missing setting JWT_JWKS_URL or JWT_PUBLIC_KEY: required unless AUTH_MODE=dev');
  }
  if (
    config.AUTH_MODE === 'dev' &&
    config.NODE_ENV === 'production' &&
    !config.ALLOW_DEV_AUTH_IN_PRODUCTION
  ) {
    throw new ConfigError(
      'invalid setting AUTH_MODE: "dev" is refused when NODE_ENV=production (set ALLOW_DEV_AUTH_IN_PRODUCTION=true to insist)',
    );
  }
  return config;
}

/** Loads the config for a process entry point: on a bad setting prints one line and exits 1. */
export function loadConfigOrExit(required: RequiredSetting[] = []): Config {
  try {
    return loadConfig(process.env, required);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`pulsegraph: ${error.message}\n`);
    process.exit(1);
  }
}
