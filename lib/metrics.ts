// Prometheus instruments shared by the platform's processes, and how each process serves them on /metrics
// (prom-client's global registry: every instrument is created once per process, at import).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type pg from 'pg';
import { collectDefaultMetrics, Counter, Gauge, Histogram, register } from 'prom-client';

/** Reads of KPI values by source: `rollups` on the normal path, `events` only where no rollup fits. */
export const metricReads = new Counter({
  name: 'pulsegraph_metric_reads_total',
  help: 'Queries that read KPI values, by the table they aggregate (rollups or raw events)',
  labelNames: ['source'] as const,
});

/** GraphQL operations served, by process, operation name and outcome (ok, errors, refused). */
export const graphqlRequests = new Counter({
  name: 'pulsegraph_graphql_requests_total',
  help: 'GraphQL requests served over HTTP, by service, operation name and outcome (ok, errors, refused)',
  labelNames: ['service', 'operation', 'outcome'] as const,
});

/** Time to answer a GraphQL request over HTTP, by process and operation name. */
export const graphqlRequestSeconds = new Histogram({
  name: 'pulsegraph_graphql_request_duration_seconds',
  help: 'Time to answer a GraphQL request over HTTP, by service and operation name',
  labelNames: ['service', 'operation'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});

/** Query fetches that shared an identical one in flight instead of sending their own (SUBGRAPH_DEDUPE). */
export const subgraphFetchesShared = new Counter({
  name: 'pulsegraph_subgraph_fetches_shared_total',
  help: 'Subgraph query fetches answered by an identical fetch already in flight (same operation, variables and Authorization)',
  labelNames: ['subgraph'] as const,
});

/** Query-plan fetches that went out in one batched request with others (SUBGRAPH_BATCHING). */
export const subgraphFetchesBatched = new Counter({
  name: 'pulsegraph_subgraph_fetches_batched_total',
  help: 'Subgraph fetches sent in one HTTP request with other fetches of the same request and plan wave (a JSON array of operations)',
  labelNames: ['subgraph'] as const,
});

/** Time of one plan fetch from the gateway to a subgraph, by subgraph and outcome. */
export const subgraphFetchSeconds = new Histogram({
  name: 'pulsegraph_subgraph_fetch_duration_seconds',
  help: 'Time of one query-plan fetch to a subgraph, by subgraph and outcome (ok, errors, failed)',
  labelNames: ['subgraph', 'outcome'] as const,
  buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});

/** Events through ingestEvents and POST /events, by outcome. */
export const ingestedEvents = new Counter({
  name: 'pulsegraph_ingest_events_total',
  help: 'Events ingested, by outcome (accepted, duplicate, rejected); rate() gives events per second',
  labelNames: ['outcome'] as const,
});

/** Time of one writer transaction (events stored and rollups added) for one tenant's share of a batch. */
export const rollupWriteSeconds = new Histogram({
  name: 'pulsegraph_rollup_write_duration_seconds',
  help: 'Time of one writer transaction: a tenant share of a batch of events stored with its rollups',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});

/** JetStream messages handled by a durable consumer, and how many of them were redeliveries. */
export const jetstreamMessages = new Counter({
  name: 'pulsegraph_jetstream_messages_total',
  help: 'Messages a durable JetStream consumer received, by consumer and whether redelivered',
  labelNames: ['consumer', 'redelivered'] as const,
});

/** Consumers of the gateway's live stream feeds that stopped under them: restarted, or the feed ended. */
export const streamFeedStops = new Counter({
  name: 'pulsegraph_stream_feed_stops_total',
  help: 'Consumers of live stream feeds that stopped: restarted after the last message dispatched, or ended (their subscribers told SERVICE_UNAVAILABLE)',
  labelNames: ['stream', 'outcome'] as const,
});

/** Messages still pending for a durable consumer after the last one it received (its lag). */
export const jetstreamPending = new Gauge({
  name: 'pulsegraph_jetstream_consumer_pending',
  help: 'Messages waiting for a durable JetStream consumer after the last one it received (lag)',
  labelNames: ['consumer'] as const,
});

/** Reads meant for the read replica (DATABASE_READ_URL) that went to the primary, and why. */
export const replicaFallbacks = new Counter({
  name: 'pulsegraph_db_replica_fallback_total',
  help: 'Transactions meant for the read replica (DATABASE_READ_URL) that ran on the primary: reason unreachable (could not connect), connection_lost (lost mid-read, run again) or recovery_conflict (cancelled by the standby, run again)',
  labelNames: ['pool', 'reason'] as const,
});

/** How far a read replica is behind its primary, as a probe measures it at scrape time. */
export interface ReplicaLag {
  seconds: number;
  bytes: number;
}

// Each read pool's probe, asked once per scrape for both gauges (their collects start together and share
// the probes in flight); a probe that fails or takes longer than LAG_PROBE_MS leaves its pool out of the
// scrape rather than holding it.
const LAG_PROBE_MS = 2_000;
const lagProbes = new Map<symbol, { name: string; probe: () => Promise<ReplicaLag> }>();
let lagsInFlight: Promise<Array<{ name: string; lag: ReplicaLag }>> | undefined;

function probeLags(): Promise<Array<{ name: string; lag: ReplicaLag }>> {
  lagsInFlight ??= Promise.all(
    [...lagProbes.values()].map(({ name, probe }) =>
      Promise.race([probe(), delay(LAG_PROBE_MS, undefined, { ref: false })]).then(
        (lag) => (lag ? [{ name, lag }] : []),
        () => [],
      ),
    ),
  )
    .then((lists) => lists.flat())
    .finally(() => (lagsInFlight = undefined));
  return lagsInFlight;
}

function lagGauge(name: string, help: string, unit: keyof ReplicaLag): Gauge<'pool'> {
  return new Gauge({
    name,
    help,
    labelNames: ['pool'] as const,
    async collect() {
      this.reset();
      for (const { name: pool, lag } of await probeLags()) this.set({ pool }, lag[unit]);
    },
  });
}

export const replicaLagSeconds = lagGauge(
  'pulsegraph_db_replica_lag_seconds',
  'Age of the last transaction the read replica replayed while it has WAL left to replay (0 once caught up); no sample while it cannot be reached',
  'seconds',
);
export const replicaLagBytes = lagGauge(
  'pulsegraph_db_replica_lag_bytes',
  'WAL bytes the primary has written that the read replica has not replayed yet',
  'bytes',
);

/** Measures a read pool's replica lag at every scrape until the returned function is called. */
export function observeReplicaLag(name: string, probe: () => Promise<ReplicaLag>): () => void {
  const key = Symbol(name);
  lagProbes.set(key, { name, probe });
  return () => lagProbes.delete(key);
}

// Pools are summed by name at scrape time; an ended pool drops out.
const pools = new Map<pg.Pool, string>();
const poolState = (pool: pg.Pool) => pool as pg.Pool & { ending?: boolean; ended?: boolean };

/** Postgres pool connections by state (total, idle, waiting, max) per named pool, read at scrape time. */
export const postgresPool = new Gauge({
  name: 'pulsegraph_postgres_pool_connections',
  help: 'Postgres pool clients by pool and state: total, idle, waiting (callers queued for a client), max',
  labelNames: ['pool', 'state'] as const,
  collect() {
    this.reset();
    for (const [pool, name] of pools) {
      if (poolState(pool).ending || poolState(pool).ended) {
        pools.delete(pool);
        continue;
      }
      this.inc({ pool: name, state: 'total' }, pool.totalCount);
      this.inc({ pool: name, state: 'idle' }, pool.idleCount);
      this.inc({ pool: name, state: 'waiting' }, pool.waitingCount);
      this.inc({ pool: name, state: 'max' }, pool.options.max ?? 10);
    }
  },
});

/** Reports a pool's saturation on /metrics under a name (the service using it) until it ends. */
export function observePool(pool: pg.Pool, name: string): void {
  pools.set(pool, name);
}

// Operation names come from clients: past this many distinct ones, further names count as "other".
const MAX_OPERATION_NAMES = 500;
const operationNames = new Set<string>();

/** The label value of an operation name, bounding label cardinality. */
export function operationLabel(name: string | undefined): string {
  if (!name) return 'anonymous';
  if (operationNames.has(name)) return name;
  if (operationNames.size >= MAX_OPERATION_NAMES || !/^[_A-Za-z][_0-9A-Za-z]{0,99}$/.test(name))
    return 'other';
  operationNames.add(name);
  return name;
}

/** Starts prom-client's process metrics (CPU, memory, event loop), once per process. */
export function collectProcessMetrics(): void {
  // A second service in the same process (tests) would register them again, and throw.
  if (!register.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics();
}

/** Answers GET /metrics with the process's registry in the Prometheus text format; false for other paths. */
export function serveMetrics(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') return false;
  void register.metrics().then(
    (text) => res.writeHead(200, { 'content-type': register.contentType }).end(text),
    (error: unknown) => res.writeHead(500).end(String(error)),
  );
  return true;
}

/** The listener of a worker process without a GraphQL port: /metrics and /healthz only. */
export function metricsListener(req: IncomingMessage, res: ServerResponse): void {
  if (serveMetrics(req, res)) return;
  if (req.method === 'GET' && req.url?.split('?')[0] === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  res.writeHead(404).end();
}
