// The example's use of the typed client: a KPI overview once, then live values that survive a dropped
// connection by resuming after the last cursor received (kpiUpdated(after:)), so nothing is missed.
import { connectSubscriptions, execute, subscribe, type ClientOptions } from './client.ts';
import type { KpiOverviewQuery, KpiUpdatesSubscription } from './gql/graphql.ts';
import { kpiOverviewQuery, kpiUpdatesSubscription } from './operations.ts';

/** One KPI as the overview lists it. */
export type KpiSummary = KpiOverviewQuery['kpis'][number];

/** One live value. */
export type LiveKpiValue = KpiUpdatesSubscription['kpiUpdated'];

/** Every KPI of the caller's tenant with its current value. */
export async function kpiOverview(options: ClientOptions): Promise<KpiSummary[]> {
  const data = await execute(options, kpiOverviewQuery);
  return data.kpis;
}

/**
 * Calls `onValue` with each live value of the KPIs until `signal` aborts. When the connection drops it
 * reconnects (up to `maxReconnects` times in a row) and resumes after the last cursor it received.
 */
export async function watchKpis(
  options: ClientOptions & { codes: string[]; after?: string; maxReconnects?: number; signal: AbortSignal },
  onValue: (value: LiveKpiValue) => void,
): Promise<void> {
  let cursor = options.after ?? null;
  let failures = 0;
  while (!options.signal.aborted) {
    const connection = connectSubscriptions(options);
    const stop = () => void connection.client.dispose();
    options.signal.addEventListener('abort', stop, { once: true });
    try {
      for await (const data of subscribe(connection, kpiUpdatesSubscription, {
        codes: options.codes,
        after: cursor,
      })) {
        failures = 0;
        cursor = data.kpiUpdated.cursor;
        onValue(data.kpiUpdated);
      }
      return;
    } catch (error) {
      if (options.signal.aborted) return;
      if (++failures > (options.maxReconnects ?? 5)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** failures));
    } finally {
      options.signal.removeEventListener('abort', stop);
      await connection.client.dispose();
    }
  }
}
