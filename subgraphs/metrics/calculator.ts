// The KPI calculator process: recomputes the current value of every KPI whose rollups changed (and of
// the formulas built on it), at most once per refreshSeconds, and publishes it on kpi.<tenant>.<code>.
import type pg from 'pg';
import { assertRowLevelSecurity, createPool, withTenant } from '../../db/pool.ts';
import type { Config } from '../../lib/config.ts';
import { windowMinutes } from '../../lib/durations.ts';
import { formulaReferences, parseFormula } from '../../lib/formula.ts';
import type { Logger } from '../../lib/logger.ts';
import { ATTR_COMPONENT, ATTR_TENANT, withSpan, type Context } from '../../lib/telemetry.ts';
import { isMainModule, runService, type RunningService } from '../../lib/service.ts';
import { connectBroker, ensureStreams, type Broker } from '../../streams/connection.ts';
import { envelope } from '../../streams/envelope.ts';
import { publishAll, traceContextOfMessage } from '../../streams/publisher.ts';
import { subjects } from '../../streams/subjects.ts';
import { KpiCalculator } from './kpiValues.ts';
import { metricOf, type MetricShape } from './metricShape.ts';
import type { KpiDefinition } from './store.ts';
import { eventStore } from './store.ts';

const TICK_MS = 200;
// Windows slide even without new events: every KPI is recomputed this often.
const SWEEP_MS = 30_000;

/** The trailing window [from, to) that `current` covers: whole minutes, up to the end of the current one. */
export function currentRange(window: string, now = Date.now()): { from: Date; to: Date } {
  const to = Math.floor(now / 60_000) * 60_000 + 60_000;
  return { from: new Date(to - (windowMinutes(window) ?? 1440) * 60_000), to: new Date(to) };
}

/**
 * A live KPI value as the KPI stream carries it (in the envelope's payload): a KpiValue for
 * kpiUpdated and a Metric for metricUpdates (null when the value is undefined), ready for the gateway.
 */
export interface KpiValuePayload {
  kpi: { code: string };
  value: number | null;
  at: string;
  window: string;
  dimensions: null;
  metric: MetricShape | null;
}

/** KPIs whose value depends on `changed`: themselves and every formula above them, transitively. */
export function withDependents(
  changed: Iterable<string>,
  definitions: Map<string, KpiDefinition>,
): Set<string> {
  const users = new Map<string, string[]>();
  for (const kpi of definitions.values()) {
    if (kpi.aggregation !== 'FORMULA' || !kpi.formula) continue;
    for (const ref of formulaReferences(parseFormula(kpi.formula)))
      users.set(ref, [...(users.get(ref) ?? []), kpi.code]);
  }
  const result = new Set<string>();
  const queue = [...changed];
  while (queue.length) {
    const code = queue.pop()!;
    if (result.has(code)) continue;
    result.add(code);
    queue.push(...(users.get(code) ?? []));
  }
  return result;
}

/** Coalesces changes per KPI and publishes new values no more often than each KPI's refreshSeconds. */
export class KpiValuePublisher {
  private readonly dirty = new Map<string, Set<string>>();
  // The trace of the latest change per tenant: its next calculation continues it (changes coalesce).
  private readonly causes = new Map<string, Context>();
  private readonly lastValue = new Map<string, number | null>();
  private readonly notBefore = new Map<string, number>();
  private readonly pool: pg.Pool;
  private readonly broker: Broker;
  private readonly logger: Logger;

  constructor(pool: pg.Pool, broker: Broker, logger: Logger) {
    this.pool = pool;
    this.broker = broker;
    this.logger = logger;
  }

  /** Marks KPIs of a tenant as changed ('*' for all of them), by the change traced in `cause` if given. */
  markDirty(tenant: string, codes: Iterable<string>, cause?: Context): void {
    if (cause) this.causes.set(tenant, cause);
    const set = this.dirty.get(tenant) ?? new Set<string>();
    for (const code of codes) set.add(code);
    this.dirty.set(tenant, set);
  }

  /** Marks every KPI of every tenant. */
  async markAll(): Promise<void> {
    const { rows } = await this.pool.query<{ tenant: string }>('SELECT platform_tenants() AS tenant');
    for (const { tenant } of rows) this.markDirty(tenant, ['*']);
  }

  /** Computes and publishes what is due; KPIs still inside their refresh interval stay dirty. */
  async tick(now = Date.now()): Promise<number> {
    let published = 0;
    for (const [tenant, codes] of [...this.dirty]) {
      this.dirty.delete(tenant);
      const cause = this.causes.get(tenant);
      this.causes.delete(tenant);
      const publish = () => this.publishTenant(tenant, codes, now);
      const attributes = { [ATTR_COMPONENT]: 'calculator', [ATTR_TENANT]: tenant };
      const calculated = cause
        ? withSpan('calculator publish kpi values', { parent: cause, attributes }, publish)
        : publish();
      published += await calculated
        .catch((error: unknown) => {
          this.markDirty(tenant, codes); // not lost: retried on the next tick
          throw error;
        })
        .finally(() => {
          // KPIs left dirty (inside their refresh interval, or failed) keep the trace that changed them.
          if (cause && this.dirty.has(tenant) && !this.causes.has(tenant)) this.causes.set(tenant, cause);
        });
    }
    return published;
  }

  private async publishTenant(tenant: string, codes: Set<string>, now: number): Promise<number> {
    const messages = await withTenant(this.pool, tenant, async (client) => {
      const definitions = await eventStore.definitions(client);
      const wanted = codes.has('*') ? new Set(definitions.keys()) : withDependents(codes, definitions);
      const calculator = new KpiCalculator(client, definitions);
      const due: Array<{ kpi: KpiDefinition; key: string }> = [];
      for (const code of wanted) {
        const kpi = definitions.get(code);
        if (!kpi) continue;
        const key = `${tenant}|${code}`;
        if ((this.notBefore.get(key) ?? 0) > now) this.markDirty(tenant, [code]);
        else due.push({ kpi, key });
      }
      // Asked for together, the values over the same window come from one query (KpiCalculator).
      const values = await Promise.all(
        due.map(({ kpi }) => {
          const { from, to } = currentRange(kpi.window, now);
          return calculator.valueOver(kpi.code, from, to);
        }),
      );
      const out: Array<{ key: string; value: number | null; payload: KpiValuePayload }> = [];
      for (const [i, { kpi, key }] of due.entries()) {
        const { code } = kpi;
        const value = values[i]!;
        this.notBefore.set(key, now + kpi.refreshSeconds * 1000);
        if (this.lastValue.has(key) && this.lastValue.get(key) === value) continue;
        const at = new Date(now);
        const metric =
          value === null
            ? null
            : metricOf({ ...kpi, name: code, interval: kpi.window, value, at, dimensions: null });
        const payload = { kpi: { code }, value, at: at.toISOString(), window: kpi.window, dimensions: null };
        out.push({ key, value, payload: { ...payload, metric } });
      }
      return out;
    });
    await publishAll(
      this.broker.nc,
      messages.map(({ payload }) => ({
        subject: subjects.kpi(tenant, payload.kpi.code),
        body: envelope({ eventType: 'kpi.value', source: 'calculator', tenant, payload }),
        msgID: `${tenant}:${payload.kpi.code}:${payload.at}`,
      })),
    );
    for (const { key, value } of messages) this.lastValue.set(key, value);
    return messages.length;
  }
}

/** Starts the calculator: listens for rollup changes, sweeps periodically, publishes KPI values. */
export async function startCalculator(config: Config, logger: Logger): Promise<RunningService> {
  const pool = createPool(config.DATABASE_URL!, config.DATABASE_POOL_SIZE, 'calculator');
  await assertRowLevelSecurity(pool);
  const broker = await connectBroker(config.NATS_URL!, 'calculator', logger);
  await ensureStreams(broker.nc);
  const publisher = new KpiValuePublisher(pool, broker, logger);
  const subscription = broker.nc.subscribe(subjects.allRollupsUpdated, {
    callback: (error, message) => {
      if (error) return;
      const tenant = message.subject.split('.')[1]!;
      const { kpis } = message.json<{ kpis: string[] }>();
      publisher.markDirty(tenant, kpis, traceContextOfMessage(message));
    },
  });
  await publisher.markAll();
  let running = true;
  let lastSweep = Date.now();
  const loop = (async () => {
    while (running) {
      try {
        if (Date.now() - lastSweep >= SWEEP_MS) {
          lastSweep = Date.now();
          await publisher.markAll();
        }
        await publisher.tick();
      } catch (error) {
        logger.error({ err: error }, 'kpi calculation failed; retrying');
      }
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
  })();
  return {
    url: `${config.NATS_URL} (${subjects.allRollupsUpdated})`,
    async close() {
      running = false;
      subscription.unsubscribe();
      await loop;
      await broker.close();
      await pool.end();
    },
  };
}

if (isMainModule(import.meta.url))
  await runService('calculator', ['DATABASE_URL', 'NATS_URL'], startCalculator);
