// What a KPI's value is expected to be at a moment, learnt from its own history of 5-minute buckets:
// a robust median of comparable past values (the last 3 hours at first, then the same time of day on
// previous days, then the same time of week on previous weeks), moved to the KPI's current level, with
// a spread (MAD) that says how far values normally stray. Pure: no clock, no I/O (docs/insights.md).

/** The length of the buckets the detector learns from and judges. */
export const BUCKET_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/** How the baseline is learnt; docs/insights.md explains each choice. */
export const LEARNING = {
  /** Nothing is judged before the KPI has this much history... */
  minHistoryMs: 2 * 3_600_000,
  /** ...holding at least this many defined bucket values. */
  minValues: 12,
  /** The recent buckets that set the current level (3 hours). */
  levelBuckets: 36,
  /** Same time of day on up to 7 previous days, once 2 previous days have data. */
  dailyPeriods: 7,
  /** Same time of week on up to 4 previous weeks, once 2 previous weeks have data. */
  weeklyPeriods: 4,
  /** Previous days (or weeks) with data at the same time before that regime is used. */
  minPeriods: 2,
  /** Buckets either side of the same time that count as comparable (±5 minutes). */
  neighbours: 1,
  /** The smallest spread, in log units (5 %): perfectly steady history does not make every wobble news. */
  spreadFloor: 0.05,
  /** Non-count KPIs are judged as ln(value + c), c being this share of their median positive value. */
  offsetShare: 0.05,
  /** Anomalies are not learnt from: their buckets are left out, from this long before they opened... */
  anomalyLeadMs: 2 * 5 * 60_000,
  /** ...for at most this long: a change that lasts becomes the new normal (and a trend). */
  anomalyForgetMs: 6 * 3_600_000,
} as const;

// How far back the level looks for its buckets when some are undefined (a quiet night of an AVG KPI).
const LEVEL_SCAN = 4 * LEARNING.levelBuckets;
// The buckets whose median positive value sets c of ln(value + c): one day.
const OFFSET_BUCKETS = 288;

/** Where the baseline comes from: the last hours, the same time of day, or the same time of week. */
export type Regime = 'recent' | 'daily' | 'weekly';

/**
 * How values are compared: counts in log space with Poisson noise on top, other positive KPIs in log
 * space (changes are multiplicative), KPIs that go negative in plain units.
 */
export type Scale = 'count' | 'log' | 'linear';

/** What kind of number a KPI is, from its aggregation. */
export type ValueKind = 'count' | 'volume' | 'level';

/** The value kind of an aggregation: counts, additive volumes (SUM), or levels (AVG, quantiles, formulas). */
export function valueKindOf(aggregation: string): ValueKind {
  if (aggregation === 'COUNT' || aggregation === 'DISTINCT_COUNT') return 'count';
  return aggregation === 'SUM' ? 'volume' : 'level';
}

/** A KPI's value per bucket, oldest first: values[i] covers [start + i·BUCKET_MS, start + (i+1)·BUCKET_MS). */
export interface BucketSeries {
  start: number;
  values: ReadonlyArray<number | null>;
}

/** The expected value at a moment and how far values normally stray from it. */
export interface Baseline {
  regime: Regime;
  /** How many previous days or weeks (weekly, daily), or recent buckets (recent), it was learnt from. */
  periods: number;
  scale: Scale;
  /** c of ln(value + c) (1 for counts); 0 on the linear scale. */
  offset: number;
  /** The expected value, in the KPI's units. */
  expected: number;
  /** The expected value on the comparison scale (ln(expected + c), or expected when linear). */
  center: number;
  /**
   * How far values normally stray: log units (log), the KPI's units (linear), or for counts the
   * relative noise beyond Poisson (over-dispersion: 0.1 means the model itself errs by about 10 %).
   */
  spread: number;
}

/** A baseline, or why there is none yet. */
export type Learnt = { ready: true; baseline: Baseline } | { ready: false; historyMs: number };

const median = (values: ArrayLike<number>): number => {
  // A typed array sorts numerically without a comparator, several times faster than Array#sort.
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** The median absolute deviation around `center`, scaled to estimate a standard deviation. */
const robustSpread = (values: number[], center: number): number =>
  values.length ? 1.4826 * median(values.map((v) => Math.abs(v - center))) : 0;

/** An anomaly episode of the past: its buckets are left out of what is learnt. */
export interface PastAnomaly {
  openedAt: number;
  /** null while it is still open. */
  closedAt: number | null;
}

/** The times an anomaly's buckets are left out of learning: [from, to). */
export function anomalyMask(anomaly: PastAnomaly): { from: number; to: number } {
  const cap = anomaly.openedAt + LEARNING.anomalyForgetMs;
  return {
    from: anomaly.openedAt - LEARNING.anomalyLeadMs,
    to: anomaly.closedAt === null ? cap : Math.min(cap, anomaly.closedAt),
  };
}

/** The series with every bucket that overlaps a past anomaly left out (null). */
export function withoutAnomalies(series: BucketSeries, anomalies: readonly PastAnomaly[]): BucketSeries {
  if (!anomalies.length) return series;
  const values = [...series.values];
  for (const anomaly of anomalies) {
    const { from, to } = anomalyMask(anomaly);
    const first = Math.max(0, Math.floor((from - series.start) / BUCKET_MS));
    const last = Math.min(values.length, Math.ceil((to - series.start) / BUCKET_MS));
    for (let i = first; i < last; i++) values[i] = null;
  }
  return { start: series.start, values };
}

/**
 * The Theil–Sen slope of (t, x) per millisecond, the median of pairwise slopes (robust to a few
 * outliers), bounded to a doubling or halving per hour: curves steeper than that are news.
 */
function theilSen(t: number[], x: number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < t.length; i++)
    for (let j = i + 1; j < t.length; j++) if (t[j] !== t[i]) slopes.push((x[j]! - x[i]!) / (t[j]! - t[i]!));
  if (!slopes.length) return 0;
  const bound = Math.LN2 / 3_600_000;
  return Math.max(-bound, Math.min(bound, median(slopes)));
}

/**
 * Learns the baseline for a value observed around `at` from the complete buckets of `series`. `memo`
 * may remember per-bucket references between calls over the same, unchanging history (a replay).
 */
export function learnBaseline(
  series: BucketSeries,
  at: number,
  kind: ValueKind,
  memo?: Map<number, number | null>,
): Learnt {
  const { values } = series;
  const first = values.findIndex((v) => v !== null && (kind === 'level' || v !== 0));
  if (first < 0) return { ready: false, historyMs: 0 };
  const historyStart = series.start + first * BUCKET_MS;
  const historyMs = series.start + values.length * BUCKET_MS - historyStart;
  let definedCount = 0;
  for (let i = first; i < values.length && definedCount < LEARNING.minValues; i++)
    if (values[i] !== null && values[i] !== undefined) definedCount++;
  if (historyMs < LEARNING.minHistoryMs || definedCount < LEARNING.minValues)
    return { ready: false, historyMs };

  // The scale and the offset follow the KPI's last day, so they move with the KPI, not with its past.
  let scale: Scale = 'count';
  let offset = 1;
  if (kind !== 'count') {
    const recent: number[] = [];
    for (let i = Math.max(first, values.length - OFFSET_BUCKETS); i < values.length; i++) {
      const v = values[i];
      if (v !== null && v !== undefined) recent.push(v);
    }
    const positive = recent.filter((v) => v > 0);
    scale = recent.some((v) => v < 0) ? 'linear' : 'log';
    offset = scale === 'linear' ? 0 : positive.length ? LEARNING.offsetShare * median(positive) : 1;
  }
  const transform = (v: number) => (scale === 'linear' ? v : Math.log(v + offset));
  const raw = (index: number): number | null => {
    const v = index >= first && index < values.length ? values[index] : null;
    return v === undefined ? null : v;
  };
  const indexOf = (time: number) => Math.floor((time - series.start) / BUCKET_MS);

  // Comparable past values of a moment: its bucket and neighbours on each previous period with data.
  const comparable = (time: number, period: number, periods: number) => {
    const samples: number[] = [];
    let used = 0;
    for (let k = 1; k <= periods; k++) {
      const center = indexOf(time - k * period);
      if (center + LEARNING.neighbours < first) break;
      const before = samples.length;
      for (let j = -LEARNING.neighbours; j <= LEARNING.neighbours; j++) {
        const value = raw(center + j);
        if (value !== null) samples.push(value);
      }
      if (samples.length > before) used++;
    }
    return { samples, used };
  };

  // The most seasonal regime the history allows at `at`; one whose slot lacks data (left out as an
  // anomaly, or undefined) gives way to the next.
  const regimes: Regime[] = [];
  if (at - LEARNING.minPeriods * WEEK_MS >= historyStart) regimes.push('weekly');
  if (at - LEARNING.minPeriods * DAY_MS >= historyStart) regimes.push('daily');
  regimes.push('recent');
  for (const regime of regimes) {
    const period = regime === 'weekly' ? WEEK_MS : DAY_MS;
    const periods = regime === 'weekly' ? LEARNING.weeklyPeriods : LEARNING.dailyPeriods;
    const slot = regime === 'recent' ? null : comparable(at, period, periods);
    if (slot && slot.used < LEARNING.minPeriods) continue;
    // The median of comparable values, in the KPI's units: a median survives the (monotone)
    // transform, so a bucket's reference does not depend on the offset and a replay can remember it.
    const reference = (time: number): number | null => {
      // Bucket middles are multiples of 150 s: the odd millisecond tells the weekly regime apart.
      const key = time + (regime === 'weekly' ? 1 : 0);
      const known = memo?.get(key);
      if (known !== undefined) return known;
      const { samples, used } = comparable(time, period, periods);
      const value = used >= LEARNING.minPeriods ? median(samples) : null;
      memo?.set(key, value);
      return value;
    };

    // The level: how the last 3 hours sit against their own reference (against a robust trend line
    // through them while the daily curve is unknown, so a morning ramp is no anomaly).
    const residuals: number[] = [];
    const references: number[] = [];
    const times: number[] = [];
    const last = values.length - 1;
    for (let i = last; i > last - LEVEL_SCAN && residuals.length < LEARNING.levelBuckets && i >= first; i--) {
      const value = raw(i);
      if (value === null) continue;
      const time = series.start + i * BUCKET_MS + BUCKET_MS / 2;
      const ref = slot ? reference(time) : null;
      if (slot && ref === null) continue;
      references.push(ref === null ? 0 : transform(ref));
      residuals.push(transform(value) - references.at(-1)!);
      times.push(time);
    }
    if (residuals.length < LEARNING.minValues) continue;
    if (!slot && scale !== 'linear') {
      const slope = theilSen(times, residuals);
      for (let i = 0; i < residuals.length; i++) {
        references[i] = -slope * (at - times[i]!);
        residuals[i]! -= references[i]!;
      }
    }
    const level = median(residuals);
    const ref = slot ? transform(median(slot.samples)) : 0;
    const center = ref + level;
    const expected = scale === 'linear' ? center : Math.max(0, Math.exp(center) - offset);
    let spread: number;
    if (scale === 'count') {
      // Counts: the model's own relative noise, beyond Poisson. Each deviation is measured in units
      // of its bucket's Poisson noise (sqrt(E + 1) in log space), so quiet and busy hours compare;
      // what exceeds 1 is the model's share, relative to the bucket's size.
      const modelShare = (deviations: number[], sizes: number[]) => {
        const standard = deviations.map((d, i) => d * Math.sqrt(sizes[i]!));
        const excess = (1.4826 * median(standard.map(Math.abs))) ** 2 - 1;
        return Math.max(0, excess) / median(sizes);
      };
      const sizes = references.map((r) => Math.exp(r + level));
      let share = modelShare(
        residuals.map((r) => r - level),
        sizes,
      );
      if (slot) {
        // The day-to-day (or week-to-week) spread of this time slot counts too.
        const size = Math.exp(ref);
        share = Math.max(
          share,
          modelShare(
            slot.samples.map((v) => transform(v) - ref),
            slot.samples.map(() => size),
          ),
        );
      }
      spread = Math.max(LEARNING.spreadFloor, Math.sqrt(share));
    } else {
      spread = robustSpread(residuals, level);
      // The day-to-day (or week-to-week) spread of this time slot counts too: nights are noisier.
      if (slot) spread = Math.max(spread, robustSpread(slot.samples.map(transform), ref));
      spread =
        scale === 'linear'
          ? Math.max(spread, LEARNING.spreadFloor * Math.abs(center), Number.EPSILON)
          : Math.max(spread, LEARNING.spreadFloor);
    }
    const used = slot ? slot.used : residuals.length;
    return { ready: true, baseline: { regime, periods: used, scale, offset, expected, center, spread } };
  }
  return { ready: false, historyMs };
}
