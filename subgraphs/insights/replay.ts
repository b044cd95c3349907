// Replays the anomaly detector over a recorded or simulated history, judging at the end of every
// minute exactly as the detector process does on each KPI value: the 5 minutes ending then against
// the baseline learnt from the complete buckets before. Pure; used to measure false positives and recall.
import { anomalyMask, BUCKET_MS, learnBaseline, type ValueKind } from './baseline.ts';
import { fullWindowValue, judgeAnomaly, judgedWindow, stepEpisode } from './detect.ts';
import type { Direction, OpenEpisode, Severity } from './detect.ts';

/** A KPI's history as the replay reads it. */
export interface ReplaySource {
  kind: ValueKind;
  /** The first moment with data (bucket aligned). */
  start: number;
  /** The KPI's value over [from, to) (minute aligned); null when undefined. */
  valueOver(from: number, to: number): number | null;
  /** How many events a sum, level or formula rests on (for a formula, the fewest of its inputs'). */
  eventsOver?(from: number, to: number): number;
}

/** One anomaly episode the replay raised. */
export interface ReplayedEpisode {
  direction: Direction;
  openedAt: number;
  closedAt: number | null;
  severity: Severity;
  /** The largest factor seen while it was open. */
  peakFactor: number;
}

/** What a replay judged and raised. */
export interface ReplayResult {
  judgments: number;
  /** Judgments whose window was anomalous (active). */
  active: number;
  episodes: ReplayedEpisode[];
}

/** Judges every minute of [from, to) (minute aligned) against the history before it. */
export function replayAnomalies(source: ReplaySource, from: number, to: number): ReplayResult {
  // Buckets as the detector learns from them: those of anomaly episodes left out, as it does.
  const buckets: Array<number | null> = [];
  const masks: Array<{ from: number; to: number }> = [];
  const masked = (start: number) => masks.some((m) => start + BUCKET_MS > m.from && start < m.to);
  const bucketAt = (index: number) => {
    while (buckets.length <= index) {
      const start = source.start + buckets.length * BUCKET_MS;
      buckets.push(masked(start) ? null : source.valueOver(start, start + BUCKET_MS));
    }
    return buckets[index]!;
  };
  const mask = (episode: ReplayedEpisode) => {
    const range = anomalyMask(episode);
    if (masks.at(-1)?.from === range.from) masks[masks.length - 1] = range;
    else masks.push(range);
    for (let i = Math.max(0, Math.floor((range.from - source.start) / BUCKET_MS)); i < buckets.length; i++)
      if (masked(source.start + i * BUCKET_MS)) buckets[i] = null;
  };
  const result: ReplayResult = { judgments: 0, active: 0, episodes: [] };
  let open: (OpenEpisode & { episode: ReplayedEpisode }) | null = null;
  let pendingSince: number | null = null;
  const memo = new Map<number, number | null>();
  for (let minute = from; minute < to; minute += 60_000) {
    const now = minute + 59_999;
    const window = judgedWindow(now);
    if (window.from < source.start) continue;
    const complete = Math.floor((now - source.start) / BUCKET_MS);
    if (complete > 0) bucketAt(complete - 1);
    // Judgments move forward, so the buckets filled so far are exactly the complete ones.
    const learnt = learnBaseline(
      { start: source.start, values: buckets },
      (window.from + window.to) / 2,
      source.kind,
      memo,
    );
    const value = source.valueOver(window.from, window.to);
    if (!learnt.ready || value === null) continue;
    const events =
      source.kind === 'count' ? Infinity : (source.eventsOver?.(window.from, window.to) ?? Infinity);
    const judgment = judgeAnomaly(
      learnt.baseline,
      fullWindowValue(value, source.kind, window.elapsedMs),
      events,
    );
    result.judgments++;
    if (judgment.state === 'active') result.active++;
    const step = stepEpisode({ open, pendingSince }, judgment, now, 'anomaly');
    pendingSince = step.pendingSince;
    if (open && judgment.state === 'active' && judgment.direction === open.direction)
      open.episode.peakFactor = Math.max(open.episode.peakFactor, judgment.factor ?? 0);
    if (step.action === 'close' || step.action === 'reopen') {
      open!.episode.closedAt = now;
      mask(open!.episode);
      open = null;
    }
    if (step.action === 'open' || step.action === 'reopen') {
      const episode: ReplayedEpisode = {
        direction: judgment.direction,
        openedAt: now,
        closedAt: null,
        severity: judgment.severity,
        peakFactor: judgment.factor ?? 0,
      };
      result.episodes.push(episode);
      mask(episode);
      open = { ...published(judgment, now), recoveringSince: null, episode };
    } else if (step.action === 'update' && open) {
      Object.assign(open, published(judgment, now), { recoveringSince: null });
      open.episode.severity = judgment.severity;
    } else if (step.action === 'hold' && open) {
      open.recoveringSince = step.recoveringSince;
    }
  }
  return result;
}

const published = (
  judgment: { direction: Direction; severity: Severity; observed: number },
  now: number,
) => ({
  direction: judgment.direction,
  severity: judgment.severity,
  publishedAt: now,
  publishedObserved: judgment.observed,
});
