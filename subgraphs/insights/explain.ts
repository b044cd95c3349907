// The words of an insight: a one-line title and a detail that says what was observed against what
// was expected and where the expectation comes from. Times are UTC, as the rollup buckets are. Pure.
import { BUCKET_MS, LEARNING, type Baseline } from './baseline.ts';
import { TREND, type AlertCondition, type AnomalyJudgment, type TrendJudgment } from './detect.ts';

/** How a KPI is named in insights. */
export interface KpiLabel {
  name: string;
  unit: string | null;
}

/** A title and a detail. */
export interface InsightText {
  title: string;
  detail: string;
}

/** The largest deviation of an episode, remembered for the words it closes with. */
export interface EpisodePeak {
  observed: number | null;
  expected: number | null;
  /** In the past tense: "Checkout latency was up to 9.1x its usual level for Monday 14:05". */
  summary: string;
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** 1,234 or 12.3 or 0.0451, with the KPI's unit. */
export function formatValue(value: number | null, unit: string | null): string {
  if (value === null) return 'no value';
  const size = Math.abs(value);
  const text =
    size >= 100
      ? Math.round(value).toLocaleString('en-US')
      : Number(value.toPrecision(3)).toLocaleString('en-US', { maximumFractionDigits: 6 });
  if (!unit) return text;
  return unit === '%' ? `${text}%` : `${text} ${unit}`;
}

/** HH:MM of a moment, UTC. */
export function clock(time: number): string {
  return new Date(time).toISOString().slice(11, 16);
}

function ratioText(ratio: number): string {
  return ratio >= 10 ? `${Math.round(ratio)}x` : `${ratio.toFixed(1)}x`;
}

/** The slot a seasonal baseline speaks for: "Monday 14:05" (weekly) or "14:05" (daily). */
function slotOf(baseline: Baseline, at: number): string {
  const start = Math.floor(at / BUCKET_MS) * BUCKET_MS;
  return baseline.regime === 'weekly'
    ? `${WEEKDAYS[new Date(start).getUTCDay()]} ${clock(start)}`
    : clock(start);
}

/** "9.1x its usual level for Monday 14:05", "down to 12% of its usual level for 14:05", ... */
function deviationPhrase(observed: number, expected: number, baseline: Baseline, at: number, past: boolean) {
  const usual =
    baseline.regime === 'recent'
      ? 'its level of the last 3 hours'
      : `its usual level for ${slotOf(baseline, at)}`;
  const verb = past ? 'was' : 'is';
  if (expected > 0 && observed >= expected)
    return `${verb} ${past ? 'up to ' : ''}${ratioText(observed / expected)} ${usual}`;
  if (expected > 0)
    return `${verb} down to ${Math.round((100 * Math.max(0, observed)) / expected)}% of ${usual}`;
  return `${verb} ${observed >= expected ? 'far above' : 'far below'} ${usual}`;
}

function learntFrom(baseline: Baseline, at: number): string {
  switch (baseline.regime) {
    case 'weekly':
      return `the same time on the ${baseline.periods} previous ${WEEKDAYS[new Date(at).getUTCDay()]}s`;
    case 'daily':
      return `the same time on the ${baseline.periods} previous days, moved to the level of the last 3 hours`;
    default:
      return `the last ${(LEARNING.levelBuckets * BUCKET_MS) / 3_600_000} hours (too little history yet for the time of day)`;
  }
}

/** The words of an anomaly while it is open, and its summary in the past tense (for its peak). */
export function anomalyText(
  kpi: KpiLabel,
  judgment: AnomalyJudgment,
  baseline: Baseline,
  window: { from: number; to: number },
): InsightText & { summary: string } {
  const at = (window.from + window.to) / 2;
  const value = (v: number) => formatValue(v, kpi.unit);
  const phrase = (past: boolean) => deviationPhrase(judgment.observed, judgment.expected, baseline, at, past);
  return {
    title: `${kpi.name} ${phrase(false)}`,
    detail:
      `${value(judgment.observed)} over the 5 minutes to ${clock(window.to)} UTC, against ` +
      `${value(judgment.expected)} expected (usual range ${value(judgment.low)} to ` +
      `${value(judgment.high)}), learnt from ${learntFrom(baseline, at)}.`,
    summary: `${kpi.name} ${phrase(true)}`,
  };
}

/** The words of an anomaly once the KPI is back within its usual range. */
export function closedAnomalyText(
  kpi: KpiLabel,
  episode: { openedAt: number; peak: EpisodePeak; recoveredAt: number },
  closedAt: number,
): InsightText {
  const { observed, expected, summary } = episode.peak;
  const minutes = Math.max(1, Math.round((closedAt - episode.openedAt) / 60_000));
  return {
    title: `${summary}; back to normal`,
    detail:
      `From ${clock(episode.openedAt)} to ${clock(closedAt)} UTC (${minutes} min); at its peak ` +
      `${formatValue(observed, kpi.unit)} against ${formatValue(expected, kpi.unit)} expected. ` +
      `Back within its usual range since ${clock(episode.recoveredAt)} UTC.`,
  };
}

/** The words of a week-over-week trend. */
export function trendText(kpi: KpiLabel, judgment: TrendJudgment, closed = false): InsightText {
  const percent = Math.round(Math.abs(judgment.change) * 100);
  const way = judgment.change >= 0 ? 'up' : 'down';
  const hours = TREND.windowMs / 3_600_000;
  return {
    title: closed
      ? `${kpi.name} is back within ${Math.round(TREND.closeChange * 100)}% of a week earlier`
      : `${kpi.name} is ${way} ${percent}% week over week`,
    detail:
      `${formatValue(judgment.observed, kpi.unit)} over the last ${hours} hours, against ` +
      `${formatValue(judgment.expected, kpi.unit)} over the same ${hours} hours a week earlier ` +
      `(${way} ${percent}%).`,
  };
}

/** The words of a threshold alert. */
export function thresholdText(
  kpi: KpiLabel,
  rule: { condition: AlertCondition; value: number },
  observed: number | null,
  episode: { openedAt: number; closedAt?: number; peak: number | null },
): InsightText {
  const side = rule.condition === 'ABOVE' ? 'above' : 'below';
  const limit = formatValue(rule.value, kpi.unit);
  if (episode.closedAt !== undefined) {
    return {
      title: `${kpi.name} was ${side} ${limit}; back to normal`,
      detail:
        `From ${clock(episode.openedAt)} to ${clock(episode.closedAt)} UTC; at its peak ` +
        `${formatValue(episode.peak, kpi.unit)}. Now ${formatValue(observed, kpi.unit)}.`,
    };
  }
  return {
    title: `${kpi.name} is ${side} ${limit}: ${formatValue(observed, kpi.unit)}`,
    detail:
      `The alert rule "${kpi.name} ${side} ${limit}" holds since ${clock(episode.openedAt)} UTC; ` +
      `the value over the KPI's window is ${formatValue(observed, kpi.unit)}.`,
  };
}

/** The words of a threshold alert whose rule was deleted while it was open. */
export function deletedRuleText(
  kpi: KpiLabel,
  rule: { condition: AlertCondition; value: number | null },
  deletedAt: number,
): InsightText {
  const side = rule.condition === 'ABOVE' ? 'above' : 'below';
  return {
    title: `${kpi.name} was ${side} ${formatValue(rule.value, kpi.unit)}; the alert rule was deleted`,
    detail: `The alert rule was deleted; the alert closed at ${clock(deletedAt)} UTC.`,
  };
}
