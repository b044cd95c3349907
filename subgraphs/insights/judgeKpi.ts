// One judgment of one KPI, on each of its values: its anomaly (the last 5 minutes against the learnt
// baseline), its week-over-week trend (every 5 minutes), its alert rules (the value itself), each
// moving its episode one step. Runs in the tenant's transaction, under the KPI's lock.
import type { TenantClient } from '../../db/pool.ts';
import { KpiCalculator } from '../metrics/kpiValues.ts';
import { eventStore, type KpiDefinition } from '../metrics/store.ts';
import { BUCKET_MS, learnBaseline, valueKindOf, withoutAnomalies, type BucketSeries } from './baseline.ts';
import {
  fullWindowValue,
  judgeAnomaly,
  judgedWindow,
  judgeThreshold,
  judgeTrend,
  stepEpisode,
  TREND,
  type InsightKind,
  type Signal,
} from './detect.ts';
import { applyStep, openEpisodeOf, type EpisodeWords } from './episodes.ts';
import {
  anomalyText,
  closedAnomalyText,
  deletedRuleText,
  thresholdText,
  trendText,
  type KpiLabel,
} from './explain.ts';
import { eventsBehind, type KpiHistories } from './kpiHistory.ts';
import { alertStore, insightStore, type EpisodeRow } from './store.ts';

/** What a detector keeps between judgments (in memory: losing it only delays a step). */
export interface DetectorMemory {
  histories: KpiHistories;
  /** Since when a fall has been waiting to be confirmed, by tenant|kpi. */
  pendingFalls: Map<string, number>;
  /** When each KPI's trend was last judged, by tenant|kpi. */
  trendJudgedAt: Map<string, number>;
}

/** A KPI being judged: its definition, words, open episodes and the tools to read its values. */
interface Judged {
  client: TenantClient;
  tenant: string;
  kpi: KpiDefinition;
  label: KpiLabel;
  open: Map<string, EpisodeRow>;
  calculator: KpiCalculator;
  definitions: Map<string, KpiDefinition>;
  now: number;
}

/** Judges a KPI of a tenant at `now`; `value` is its current value as the calculator published it. */
export async function judgeKpi(
  client: TenantClient,
  memory: DetectorMemory,
  tenant: string,
  code: string,
  value: number | null,
  now: number,
): Promise<void> {
  await insightStore.lockKpi(client, tenant, code);
  const definitions = await eventStore.definitions(client);
  const kpi = definitions.get(code);
  if (!kpi) return;
  const judged: Judged = {
    client,
    tenant,
    kpi,
    label: (await insightStore.kpiLabel(client, code)) ?? { name: code, unit: kpi.unit },
    open: new Map((await insightStore.openEpisodes(client, code)).map((row) => [row.episode, row])),
    calculator: new KpiCalculator(client, definitions),
    definitions,
    now,
  };
  const series = await memory.histories.series(client, tenant, kpi, judged.calculator, now);
  await judgeAnomalyOf(judged, memory, series);
  await judgeTrendOf(judged, memory, series);
  await judgeRules(judged, value);
}

async function step(
  judged: Judged,
  kind: InsightKind,
  episode: string,
  signal: Signal,
  words: EpisodeWords,
  pending?: { key: string; map: Map<string, number> },
): Promise<void> {
  const row = judged.open.get(episode);
  const next = stepEpisode(
    { open: openEpisodeOf(row), pendingSince: pending?.map.get(pending.key) ?? null },
    signal,
    judged.now,
    kind,
  );
  if (pending) {
    if (next.pendingSince === null) pending.map.delete(pending.key);
    else pending.map.set(pending.key, next.pendingSince);
  }
  const family = { tenant: judged.tenant, kpiCode: judged.kpi.code, kind, episode };
  await applyStep(judged.client, family, row, next, signal, words);
}

async function judgeAnomalyOf(judged: Judged, memory: DetectorMemory, series: BucketSeries) {
  const { client, kpi, now, label } = judged;
  const kind = valueKindOf(kpi.aggregation);
  const window = judgedWindow(now);
  const anomalies = await insightStore.anomaliesSince(client, kpi.code, new Date(series.start));
  const learnt = learnBaseline(withoutAnomalies(series, anomalies), (window.from + window.to) / 2, kind);
  if (!learnt.ready) return;
  const value = await judged.calculator.valueOver(kpi.code, new Date(window.from), new Date(window.to));
  // No value (no events for an average): nothing to judge, an open anomaly waits for the next one.
  if (value === null) return;
  const events = await eventsBehind(client, judged.definitions, kpi, window.from, window.to);
  const judgment = judgeAnomaly(learnt.baseline, fullWindowValue(value, kind, window.elapsedMs), events);
  let text: ReturnType<typeof anomalyText> | undefined;
  const words = () => (text ??= anomalyText(label, judgment, learnt.baseline, window));
  const numbers = { observed: judgment.observed, expected: judgment.expected, at: new Date(now) };
  await step(
    judged,
    'anomaly',
    'anomaly',
    judgment,
    {
      current: () => ({ severity: judgment.severity, ...words(), ...numbers }),
      closing: (row) => ({
        severity: row.severity,
        ...closedAnomalyText(
          label,
          {
            openedAt: row.openedAt.getTime(),
            peak: {
              observed: row.peakObserved,
              expected: row.peakExpected,
              summary: row.peakSummary ?? row.title,
            },
            recoveredAt: row.recoveringSince?.getTime() ?? now,
          },
          now,
        ),
        ...numbers,
      }),
      peak: () => ({
        peakSize: judgment.factor ?? Math.abs(judgment.z),
        peakObserved: judgment.observed,
        peakExpected: judgment.expected,
        peakSummary: words().summary,
      }),
    },
    { key: `${judged.tenant}|${kpi.code}`, map: memory.pendingFalls },
  );
}

async function judgeTrendOf(judged: Judged, memory: DetectorMemory, series: BucketSeries) {
  const { kpi, now, label, calculator } = judged;
  const key = `${judged.tenant}|${kpi.code}`;
  if (now - (memory.trendJudgedAt.get(key) ?? -Infinity) < TREND.everyMs) return;
  const kind = valueKindOf(kpi.aggregation);
  const first = series.values.findIndex((v) => v !== null && (kind === 'level' || v !== 0));
  if (first < 0 || now - (series.start + first * BUCKET_MS) < TREND.minHistoryMs) return;
  memory.trendJudgedAt.set(key, now);
  const since = now - TREND.windowMs;
  const current = await calculator.valueOver(kpi.code, new Date(since), new Date(now));
  const previous = await calculator.valueOver(
    kpi.code,
    new Date(since - TREND.lagMs),
    new Date(now - TREND.lagMs),
  );
  const judgment = judgeTrend(current, previous, kind);
  if (!judgment) return;
  const numbers = { observed: judgment.observed, expected: judgment.expected, at: new Date(now) };
  await step(judged, 'trend', 'trend', judgment, {
    current: () => ({ severity: judgment.severity, ...trendText(label, judgment), ...numbers }),
    closing: (row) => ({ severity: row.severity, ...trendText(label, judgment, true), ...numbers }),
    peak: () => ({
      peakSize: Math.abs(judgment.change),
      peakObserved: judgment.observed,
      peakExpected: judgment.expected,
    }),
  });
}

async function judgeRules(judged: Judged, value: number | null) {
  const { client, kpi, now, label } = judged;
  const rules = (await alertStore.ofKpis(client, [kpi.code])).get(kpi.code) ?? [];
  for (const rule of rules) {
    const signal = judgeThreshold(rule, value);
    const episode = `threshold:${rule.id}`;
    const numbers = { observed: value, expected: rule.value, at: new Date(now) };
    await step(judged, 'threshold', episode, signal, {
      current: () => {
        const row = judged.open.get(episode);
        const openedAt = row?.openedAt.getTime() ?? now;
        return {
          severity: rule.severity,
          ...thresholdText(label, rule, value, { openedAt, peak: value }),
          ...numbers,
        };
      },
      closing: (row) => ({
        severity: row.severity,
        ...thresholdText(label, rule, value, {
          openedAt: row.openedAt.getTime(),
          closedAt: now,
          peak: row.peakObserved,
        }),
        ...numbers,
      }),
      peak: () =>
        value === null
          ? null
          : { peakSize: rule.condition === 'ABOVE' ? value : -value, peakObserved: value },
    });
  }
  // A rule deleted while its alert was open: the alert closes with it.
  const ruleIds = new Set(rules.map((rule) => `threshold:${rule.id}`));
  for (const [episode, row] of judged.open) {
    if (!episode.startsWith('threshold:') || ruleIds.has(episode)) continue;
    const condition = row.direction === 'down' ? 'BELOW' : 'ABOVE';
    await insightStore.newVersion(
      client,
      row.id,
      {
        severity: row.severity,
        ...deletedRuleText(label, { condition, value: row.expected }, now),
        observed: value,
        expected: row.expected,
        at: new Date(now),
      },
      {},
      true,
    );
  }
}
