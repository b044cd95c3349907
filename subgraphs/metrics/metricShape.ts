// The Metric type's shape, built in one place for the metrics query and the KPI stream's messages.

const METRIC_TYPE: Record<string, string> = { COUNT: 'COUNTER', SUM: 'COUNTER', DISTINCT_COUNT: 'COUNTER' };

/** The MetricType of an aggregation: counters for counts and sums, summaries for percentiles. */
export const metricType = (aggregation: string) =>
  METRIC_TYPE[aggregation] ?? (aggregation.startsWith('P') ? 'SUMMARY' : 'GAUGE');

/** A Metric value as the schema returns it. */
export interface MetricShape {
  id: string;
  name: string;
  type: string;
  value: number;
  timestamp: string | Date;
  dimensions: Record<string, string | null> | null;
  metadata: { unit: string | null; aggregation: string; interval: string; retention: null };
}

/** One Metric: a value of `name` at `at`, bucketed by `interval`. */
export function metricOf(fields: {
  name: string;
  aggregation: string;
  unit: string | null;
  interval: string;
  value: number;
  at: Date;
  dimensions: Record<string, string | null> | null;
}): MetricShape {
  const { name, aggregation, at, dimensions } = fields;
  return {
    id: `${name}@${at.toISOString()}${dimensions ? JSON.stringify(dimensions) : ''}`,
    name,
    type: metricType(aggregation),
    value: fields.value,
    timestamp: at,
    dimensions,
    metadata: { unit: fields.unit, aggregation, interval: fields.interval, retention: null },
  };
}
