// Judgments over a KPI's values, and the episode that each kind of insight lives through: an anomaly,
// trend or threshold is opened once, updated while it lasts and closed when the KPI recovers. Pure.
import { BUCKET_MS, type Baseline, type ValueKind } from './baseline.ts';

/** How urgent an insight is (the contract's Severity). */
export type Severity = 'INFO' | 'WARNING' | 'CRITICAL';
/** The kinds of insight the detector raises. */
export type InsightKind = 'anomaly' | 'trend' | 'threshold';
/** Which way a KPI moved. */
export type Direction = 'up' | 'down';

/**
 * Whether a condition holds: `active` opens an episode or keeps feeding it, `elevated` (between the
 * opening and the closing thresholds) keeps an open one as it is, `normal` lets it recover and close.
 */
export type SignalState = 'active' | 'elevated' | 'normal';

/** What a judgment says, whatever its kind. */
export interface Signal {
  state: SignalState;
  direction: Direction | null;
  severity: Severity;
  observed: number | null;
}

const SEVERITY_RANK: Record<Severity, number> = { INFO: 0, WARNING: 1, CRITICAL: 2 };

/** Anomaly thresholds: both the robust z-score and the factor must pass; the factor sets the severity. */
export const ANOMALY = {
  openZ: 4.5,
  /** A fall must also last a whole window before it opens (EPISODES.confirmFallMs), so it needs less. */
  openZFall: 4,
  openFactor: 1.5,
  /** Before 2 days of history the daily curve is unknown: an anomaly needs more (2x and z 5 both ways). */
  openFactorRecent: 2,
  openZRecent: 5,
  closeZ: 3,
  closeFactor: 1.25,
  warningFactor: 2,
  criticalFactor: 5,
  /** KPIs judged on the linear scale have no factor: the z-score alone sets the severity. */
  warningZ: 8,
  criticalZ: 12,
  /**
   * A sum, average, percentile or formula resting on fewer events than this in the window is not
   * judged: a handful of night-time orders swings it by chance.
   */
  minEvents: 20,
  /** A count must also move by this many events: 0.6 expected and 7 seen is rare, but no news. */
  minCountChange: 10,
} as const;

/** Trend thresholds: the last 24 hours against the same 24 hours one week earlier. */
export const TREND = {
  windowMs: 86_400_000,
  lagMs: 7 * 86_400_000,
  /** History needed before judging: the week-earlier window must be all there. */
  minHistoryMs: 8 * 86_400_000,
  openChange: 0.25,
  closeChange: 0.15,
  warningChange: 0.5,
  /** Counts must also differ beyond Poisson noise: |a - b| >= minCountZ · sqrt(a + b). */
  minCountZ: 4,
  /** How often a KPI's trend is judged (24-hour windows move slowly). */
  everyMs: 5 * 60_000,
} as const;

/** How episodes are kept: when an open one is published again, and how long recovery must last. */
export const EPISODES = {
  /** An open insight is republished when its severity rises, or at most this often when its value moved... */
  updateEveryMs: 5 * 60_000,
  /** ...by at least this share since the last published version. */
  updateChange: 0.1,
  /** A KPI must stay back to normal this long before the episode closes (one bucket for anomalies). */
  recoveryMs: { anomaly: BUCKET_MS, trend: 0, threshold: 60_000 } satisfies Record<InsightKind, number>,
  /**
   * A fall must last this long before it opens an anomaly (anomalous at both ends, never back to
   * normal in between): a quiet 5 minutes of a small KPI is common at night, an outage lasts.
   * Rises open at once.
   */
  confirmFallMs: { anomaly: BUCKET_MS, trend: 0, threshold: 0 } satisfies Record<InsightKind, number>,
} as const;

// Counts are judged no less spread than a Poisson count of this mean, so "0 then 3" is no anomaly.
const MIN_COUNT_MEAN = 0.5;

/** The judged window at `now`: the 5 minutes ending with the current minute, and how much of it has passed. */
export function judgedWindow(now: number): { from: number; to: number; elapsedMs: number } {
  const to = Math.floor(now / 60_000) * 60_000 + 60_000;
  const from = to - BUCKET_MS;
  return { from, to, elapsedMs: Math.max(now - from, BUCKET_MS - 60_000) };
}

/**
 * A window's value as if the whole window had passed: additive KPIs (counts, sums) are scaled up for
 * the part of the current minute still to come; other KPIs are already comparable.
 */
export function fullWindowValue(value: number, kind: ValueKind, elapsedMs: number): number {
  return kind === 'level' ? value : (value * BUCKET_MS) / Math.min(BUCKET_MS, elapsedMs);
}

/** An anomaly judgment: the signal, with how far the value is from the baseline and the usual range. */
export interface AnomalyJudgment extends Signal {
  direction: Direction;
  observed: number;
  expected: number;
  /** Robust z-score: deviations in units of the normal spread (Poisson noise included for counts). */
  z: number;
  /** observed/expected or expected/observed, whichever is >= 1 (offset by c); null on the linear scale. */
  factor: number | null;
  /** The range the detector considers usual: outside it (both tests failing) is an anomaly. */
  low: number;
  high: number;
}

/**
 * Compares a value with its baseline. `events`, how many events a sum, level or formula rests on in
 * the window, makes a value of too few events normal: it can let an anomaly close, never open one.
 */
export function judgeAnomaly(baseline: Baseline, observed: number, events = Infinity): AnomalyJudgment {
  const { scale, center, spread, offset, expected } = baseline;
  const recent = baseline.regime === 'recent';
  const openFactor = recent ? ANOMALY.openFactorRecent : ANOMALY.openFactor;
  const openZ = recent ? ANOMALY.openZRecent : ANOMALY.openZ;
  const openZFall = recent ? ANOMALY.openZRecent : ANOMALY.openZFall;
  let z: number;
  let factor: number | null;
  let low: number;
  let high: number;
  if (scale === 'count') {
    // Counts carry Poisson noise of their own, judged by the Poisson deviance (exact in the tails,
    // where a normal approximation is not), widened by the model's own relative noise.
    const mean = Math.max(expected, MIN_COUNT_MEAN);
    const dispersion = Math.sqrt(1 + spread * spread * (mean + 1));
    const countZ = (n: number) => {
      const deviance = 2 * ((n > 0 ? n * Math.log(n / mean) : 0) - (n - mean));
      return (Math.sign(n - mean) * Math.sqrt(Math.max(0, deviance))) / dispersion;
    };
    z = countZ(Math.max(0, observed));
    const ratio = (observed + 1) / (expected + 1);
    factor = Math.max(ratio, 1 / ratio);
    const upper = solveIncreasing(
      countZ,
      openZ,
      mean,
      mean + 10 * (openZ + 1) * dispersion * Math.sqrt(mean + 1),
    );
    const lower = countZ(0) <= -openZFall ? solveIncreasing(countZ, -openZFall, 0, mean) : 0;
    high = Math.max(upper, (expected + 1) * openFactor - 1);
    low = Math.max(0, Math.min(lower, (expected + 1) / openFactor - 1));
  } else if (scale === 'log') {
    const deviation = Math.log(Math.max(observed, 0) + offset) - center;
    z = deviation / spread;
    factor = Math.exp(Math.abs(deviation));
    const edge = (sign: 1 | -1) => Math.exp(center + sign * (sign > 0 ? openZ : openZFall) * spread) - offset;
    high = Math.max(edge(1), (expected + offset) * openFactor - offset);
    low = Math.max(0, Math.min(edge(-1), (expected + offset) / openFactor - offset));
  } else {
    z = (observed - center) / spread;
    factor = null;
    high = center + openZ * spread;
    low = center - openZFall * spread;
  }
  const size = Math.abs(z);
  const large = scale !== 'count' || Math.abs(observed - expected) >= ANOMALY.minCountChange;
  const state: SignalState =
    events < ANOMALY.minEvents
      ? 'normal'
      : size >= (z >= 0 ? openZ : openZFall) && (factor === null || factor >= openFactor) && large
        ? 'active'
        : size < ANOMALY.closeZ || (factor !== null && factor < ANOMALY.closeFactor)
          ? 'normal'
          : 'elevated';
  const severity: Severity =
    factor === null
      ? size >= ANOMALY.criticalZ
        ? 'CRITICAL'
        : size >= ANOMALY.warningZ
          ? 'WARNING'
          : 'INFO'
      : factor >= ANOMALY.criticalFactor
        ? 'CRITICAL'
        : factor >= ANOMALY.warningFactor
          ? 'WARNING'
          : 'INFO';
  return { state, direction: z >= 0 ? 'up' : 'down', severity, observed, expected, z, factor, low, high };
}

/** A trend judgment: the change of the last 24 hours against the same hours a week earlier. */
export interface TrendJudgment extends Signal {
  observed: number;
  expected: number;
  /** (observed - expected) / |expected| */
  change: number;
}

/** Compares a KPI's value over the last window with the same window a week earlier; null when undefined. */
export function judgeTrend(
  current: number | null,
  previous: number | null,
  kind: ValueKind,
): TrendJudgment | null {
  if (current === null || previous === null || previous === 0) return null;
  const change = (current - previous) / Math.abs(previous);
  const size = Math.abs(change);
  // A count that doubles from 3 to 6 is no trend: the difference must stand out of Poisson noise.
  const significant =
    kind !== 'count' ||
    Math.abs(current - previous) >= TREND.minCountZ * Math.sqrt(Math.abs(current) + Math.abs(previous));
  const state: SignalState =
    size >= TREND.openChange && significant ? 'active' : size >= TREND.closeChange ? 'elevated' : 'normal';
  return {
    state,
    direction: change >= 0 ? 'up' : 'down',
    severity: size >= TREND.warningChange ? 'WARNING' : 'INFO',
    observed: current,
    expected: previous,
    change,
  };
}

/** When a threshold alert fires (the contract's AlertCondition). */
export type AlertCondition = 'ABOVE' | 'BELOW';

/** An alert rule: a KPI, a condition, a value and the severity of the insights it raises. */
export interface AlertRule {
  id: string;
  kpiCode: string;
  condition: AlertCondition;
  value: number;
  severity: Severity;
}

/** Judges a KPI's current value against an alert rule. */
export function judgeThreshold(rule: AlertRule, value: number | null): Signal {
  const holds = value !== null && (rule.condition === 'ABOVE' ? value > rule.value : value < rule.value);
  return {
    state: holds ? 'active' : 'normal',
    direction: rule.condition === 'ABOVE' ? 'up' : 'down',
    severity: rule.severity,
    observed: value,
  };
}

/** What the detector knows of an open episode. */
export interface OpenEpisode {
  direction: Direction | null;
  severity: Severity;
  /** When its last version was published, and the value it carried. */
  publishedAt: number;
  publishedObserved: number | null;
  /** Since when the KPI has been back to normal, if it is. */
  recoveringSince: number | null;
}

/**
 * What to do with an episode after a judgment: open one, publish a new version of the open one,
 * keep it silently, close it, or close it and open another because the KPI now deviates the other
 * way. `recoveringSince` and `pendingSince` are what to remember until the next judgment.
 */
export interface EpisodeStep {
  action: 'none' | 'open' | 'update' | 'hold' | 'close' | 'reopen';
  /** Since when the KPI has been back to normal while the episode stays open (null when it is not). */
  recoveringSince: number | null;
  /** Since when a deviation that must last before it opens has lasted (null when none is waiting). */
  pendingSince: number | null;
}

/** The next step of an episode of `kind` given a new judgment; `open` is null when none is open. */
export function stepEpisode(
  state: { open: OpenEpisode | null; pendingSince: number | null },
  signal: Signal,
  now: number,
  kind: InsightKind,
): EpisodeStep {
  const { open } = state;
  const step = (
    action: EpisodeStep['action'],
    recoveringSince: number | null = null,
    pendingSince: number | null = null,
  ) => ({
    action,
    recoveringSince,
    pendingSince,
  });
  const sameWay = open !== null && signal.direction === open.direction;
  // A fall waiting to be confirmed stays pending while the KPI stays at least elevated.
  let pendingSince: number | null =
    signal.state !== 'normal' && signal.direction === 'down' && !sameWay ? state.pendingSince : null;
  if (signal.state === 'active' && !sameWay) {
    pendingSince ??= now;
    const confirmMs = signal.direction === 'down' ? EPISODES.confirmFallMs[kind] : 0;
    if (now - pendingSince >= confirmMs) return step(open ? 'reopen' : 'open');
  }
  if (!open) return step('none', null, pendingSince);
  if (signal.state === 'active' && sameWay) {
    if (SEVERITY_RANK[signal.severity] > SEVERITY_RANK[open.severity]) return step('update');
    const due = now - open.publishedAt >= EPISODES.updateEveryMs;
    if (due && (signal.severity !== open.severity || moved(open.publishedObserved, signal.observed)))
      return step('update');
    return step('hold');
  }
  if (signal.state === 'elevated' && sameWay) return step('hold');
  const since = open.recoveringSince ?? now;
  return now - since >= EPISODES.recoveryMs[kind] ? step('close') : step('hold', since, pendingSince);
}

/** The x in [lo, hi] where the increasing f reaches target (bisection). */
function solveIncreasing(f: (x: number) => number, target: number, lo: number, hi: number): number {
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

function moved(before: number | null, after: number | null): boolean {
  if (before === null || after === null) return before !== after;
  return Math.abs(after - before) >= EPISODES.updateChange * Math.max(Math.abs(before), Number.EPSILON);
}
