// Applies the steps of detect.ts's episode logic to the stored insights: a new row when an episode
// opens, a new version (published again) when it is updated or closed, and a silent note of what the
// detector must remember in between (since when the KPI recovers, its largest deviation so far).
import type { TenantClient } from '../../db/pool.ts';
import type { EpisodeStep, InsightKind, OpenEpisode, Signal } from './detect.ts';
import { insightStore, type EpisodeMemory, type EpisodeRow, type EpisodeVersion } from './store.ts';

/** What the detector knows of an open episode, from its row. */
export function openEpisodeOf(row: EpisodeRow | undefined): OpenEpisode | null {
  if (!row) return null;
  return {
    direction: row.direction,
    severity: row.severity,
    publishedAt: row.versionAt.getTime(),
    publishedObserved: row.versionObserved,
    recoveringSince: row.recoveringSince?.getTime() ?? null,
  };
}

/** The words and numbers of an episode's versions, built only when needed. */
export interface EpisodeWords {
  /** The version describing the judgment (opening or updating). */
  current(): EpisodeVersion;
  /** The last version, when it closes. */
  closing(row: EpisodeRow): EpisodeVersion;
  /** This judgment's deviation as a candidate peak (null when it is not one): kept when larger. */
  peak(): (EpisodeMemory & { peakSize: number }) | null;
}

/** One episode family of a KPI: 'anomaly', 'trend' or 'threshold:<rule id>'. */
export interface EpisodeFamily {
  tenant: string;
  kpiCode: string;
  kind: InsightKind;
  episode: string;
}

/** Stores what a step of an episode family asks for. */
export async function applyStep(
  client: TenantClient,
  family: EpisodeFamily,
  row: EpisodeRow | undefined,
  step: EpisodeStep,
  signal: Signal,
  words: EpisodeWords,
): Promise<void> {
  const peak = () => {
    const candidate = signal.state === 'active' ? words.peak() : null;
    return candidate && (!row || candidate.peakSize > (row.peakSize ?? -Infinity)) ? candidate : {};
  };
  const open = () =>
    insightStore.open(
      client,
      family.tenant,
      { ...family, context: family.kpiCode, direction: signal.direction },
      words.current(),
      signal.state === 'active' ? (words.peak() ?? {}) : {},
    );
  switch (step.action) {
    case 'open':
      return open();
    case 'reopen':
      await insightStore.newVersion(client, row!.id, words.closing(row!), {}, true);
      return open();
    case 'update':
      return insightStore.newVersion(client, row!.id, words.current(), peak());
    case 'close':
      return insightStore.newVersion(client, row!.id, words.closing(row!), {}, true);
    case 'hold': {
      const memory: EpisodeMemory = peak();
      if (step.recoveringSince !== (row!.recoveringSince?.getTime() ?? null))
        memory.recoveringSince = step.recoveringSince === null ? null : new Date(step.recoveringSince);
      if (Object.keys(memory).length) await insightStore.remember(client, row!.id, memory);
      return;
    }
    default:
      return;
  }
}
