import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { Stream } from './subjects.ts';

const DAY_MS = 86_400_000;

/** The platform's streams: file storage, a 2-minute duplicate window for Nats-Msg-Id. */
export const streamDefinitions: Array<Partial<StreamConfig> & { name: string; subjects: string[] }> = [
  {
    name: Stream.EVENTS,
    subjects: ['events.*.>'],
    max_age: nanos(7 * DAY_MS),
    description: 'ingested events, envelope of runtime.md, Nats-Msg-Id = event id',
  },
  { name: Stream.KPI, subjects: ['kpi.*.>'], max_age: nanos(7 * DAY_MS), description: 'computed KPI values' },
  {
    name: Stream.INSIGHTS,
    subjects: ['insights.*.>'],
    max_age: nanos(30 * DAY_MS),
    description: 'detected insights',
  },
  {
    name: Stream.REPORTS,
    subjects: ['reports.*.jobs'],
    retention: RetentionPolicy.Workqueue,
    description: 'report generation jobs',
  },
  {
    name: Stream.METADATA,
    subjects: ['metadata.*.changed'],
    max_age: nanos(30 * DAY_MS),
    description: 'definition changes',
  },
].map((definition) => ({
  storage: StorageType.File,
  discard: DiscardPolicy.Old,
  duplicate_window: nanos(120_000),
  ...definition,
}));
