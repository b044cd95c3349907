import { Counter } from 'prom-client';

/** Reads of KPI values by source: `rollups` on the normal path, `events` only where no rollup fits. */
export const metricReads = new Counter({
  name: 'pulsegraph_metric_reads_total',
  help: 'Queries that read KPI values, by the table they aggregate (rollups or raw events)',
  labelNames: ['source'] as const,
});
