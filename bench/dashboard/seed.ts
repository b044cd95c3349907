// The dashboard bench's tenant, seeded through the platform's GraphQL API: ten KPIs over three event
// names, alert rules that the values cross (threshold insights), two reports, and the last 50 minutes of
// events. The writer, the KPI calculator and the insights detector run until every KPI has its value and
// every rule its insight, then stop: from then on every answer of the dashboard query stays the same.
import { createLogger } from '../../lib/logger.ts';
import type { RunningService } from '../../lib/service.ts';
import type { LocalPlatform } from '../../scripts/localPlatform.ts';
import { startDetector } from '../../subgraphs/insights/detector.ts';
import { startCalculator } from '../../subgraphs/metrics/calculator.ts';
import { startWriter } from '../../subgraphs/metrics/writer.ts';
import { DASHBOARD_QUERY, dashboardVariables } from './query.ts';

export const TENANT = 'bench';
const MINUTE = 60_000;
const HISTORY_MINUTES = 50;
const SETTLE_TIMEOUT_MS = 120_000;

/** code, name, unit, aggregation, and what it aggregates: an event (and its attribute), or a formula. */
const KPIS: Array<[string, string, string | null, string, string, string?]> = [
  ['shop.orders', 'Orders', null, 'COUNT', 'order.placed'],
  ['shop.revenue', 'Revenue', 'EUR', 'SUM', 'order.placed', 'amount'],
  ['shop.basket', 'Average basket', 'EUR', 'AVG', 'order.placed', 'amount'],
  ['shop.largest', 'Largest order', 'EUR', 'MAX', 'order.placed', 'amount'],
  ['shop.items', 'Items sold', null, 'SUM', 'order.placed', 'items'],
  ['web.visits', 'Visits', null, 'COUNT', 'page.viewed'],
  ['web.visitors', 'Visitors', null, 'DISTINCT_COUNT', 'page.viewed', 'visitor'],
  ['api.requests', 'API requests', null, 'COUNT', 'api.request'],
  ['api.latency', 'API latency', 'ms', 'P95', 'api.request', 'latency_ms'],
  ['shop.conversion', 'Conversion', null, 'FORMULA', 'shop.orders / web.visits'],
];
const kpiInput = ([code, name, unit, aggregation, of, valueField]: (typeof KPIS)[number]) =>
  aggregation === 'FORMULA'
    ? { code, name, unit, aggregation, formula: of }
    : { code, name, unit, aggregation, eventName: of, valueField };
/** Rules every seeded value crosses: each opens one threshold insight. */
const ALERTS = [
  ['shop.orders', 'ABOVE', 100, 'CRITICAL'],
  ['shop.orders', 'ABOVE', 50, 'WARNING'],
  ['shop.revenue', 'ABOVE', 1_000, 'WARNING'],
  ['shop.basket', 'BELOW', 1_000, 'INFO'],
  ['web.visits', 'ABOVE', 500, 'INFO'],
  ['api.latency', 'ABOVE', 100, 'WARNING'],
] as const;
/** Events a minute of each name, and the attributes of the i-th (deterministic, so every run seeds alike). */
const EVENTS: Array<[name: string, perMinute: number, attributes: (i: number) => Record<string, unknown>]> = [
  ['order.placed', 6, (i) => ({ amount: 20 + ((i * 37) % 80), items: 1 + (i % 4) })],
  ['page.viewed', 30, (i) => ({ visitor: `v${(i * 7) % 400}` })],
  ['api.request', 12, (i) => ({ latency_ms: 40 + ((i * 13) % 120) })],
];
const ORDERS = HISTORY_MINUTES * EVENTS[0]![1];
const VISITS = HISTORY_MINUTES * EVENTS[1]![1];
/** What seeding waits for: every KPI's value and insights (the dashboard shows the latest 3 of each). */
const PROBE = '{ kpis { code current { value } insights(limit: 50) { kind } } }';

/** What the bench seeded, for its output. */
export interface Seeded {
  /** The dashboard query's variables: lastHour ends with the seeded history. */
  variables: ReturnType<typeof dashboardVariables>;
  events: number;
  kpis: number;
  insights: number;
  reports: number;
  settleSeconds: number;
}

type Graphql = (query: string, variables?: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** Defines the KPIs, rules and reports and ingests the events; returns how many events. */
async function define(graphql: Graphql, end: number): Promise<number> {
  for (const kpi of KPIS)
    await graphql('mutation ($input: KpiInput!) { defineKpi(input: $input) { code } }', {
      input: kpiInput(kpi),
    });
  for (const [kpi, condition, value, severity] of ALERTS)
    await graphql(
      'mutation ($kpi: ID!, $condition: AlertCondition!, $value: Float!, $severity: Severity!) { defineAlert(kpi: $kpi, condition: $condition, value: $value, severity: $severity) { id } }',
      { kpi, condition, value, severity },
    );
  const timeRange = { start: new Date(end - 3_600_000).toISOString(), end: new Date(end).toISOString() };
  for (const [name, metrics] of [
    ['Shop today', ['shop.orders', 'shop.revenue']],
    ['Traffic', ['web.visits', 'web.visitors']],
  ] as const)
    await graphql('mutation ($input: CreateReportInput!) { createReport(input: $input) { id } }', {
      input: { name, type: 'DASHBOARD', config: { metrics, timeRange } },
    });
  const events = EVENTS.flatMap(([name, perMinute, attributes]) =>
    Array.from({ length: HISTORY_MINUTES * perMinute }, (_, i) => ({
      id: `${name}-${i}`,
      type: 'BUSINESS_EVENT',
      name,
      source: 'bench',
      timestamp: new Date(
        end - HISTORY_MINUTES * MINUTE + Math.floor((i * MINUTE) / perMinute),
      ).toISOString(),
      attributes: attributes(i),
    })),
  );
  for (let i = 0; i < events.length; i += 1_000) {
    const data = await graphql(
      'mutation ($events: [EventInput!]!) { ingestEvents(events: $events) { accepted rejected { message } } }',
      { events: events.slice(i, i + 1_000) },
    );
    const { rejected } = data['ingestEvents'] as { rejected: Array<{ message: string }> };
    if (rejected.length) throw new Error(`ingestEvents rejected: ${rejected[0]!.message}`);
  }
  return events.length;
}

interface KpiState {
  code: string;
  current: { value: number | null } | null;
  insights: Array<{ kind: string }>;
}

/** Seeds the tenant and waits until the dashboard shows it all, and stops changing; see the file's head. */
export async function seedDashboard(platform: LocalPlatform): Promise<Seeded> {
  const admin = await platform.token(TENANT, ['admin']);
  const graphql: Graphql = async (query, variables) => {
    const { body } = await platform.graphql(query, { token: admin, variables });
    if (body.errors?.length || !body.data) throw new Error(`seeding: ${JSON.stringify(body.errors)}`);
    return body.data;
  };
  const logger = createLogger('bench', 'warn');
  const workers: RunningService[] = [];
  try {
    for (const start of [startWriter, startCalculator, startDetector])
      workers.push(await start(platform.config, logger));
    const end = Math.floor(Date.now() / MINUTE) * MINUTE;
    const started = performance.now();
    const events = await define(graphql, end);
    const variables = dashboardVariables(new Date(end));
    let previous = '';
    for (const deadline = Date.now() + SETTLE_TIMEOUT_MS; ;) {
      const kpis = (await graphql(PROBE))['kpis'] as KpiState[];
      const value = (code: string) => kpis.find((kpi) => kpi.code === code)?.current?.value;
      const insights = kpis.flatMap((kpi) => kpi.insights);
      const shown =
        kpis.length === KPIS.length &&
        kpis.every((kpi) => kpi.current?.value != null) &&
        value('shop.orders') === ORDERS &&
        value('web.visits') === VISITS &&
        insights.filter((insight) => insight.kind === 'threshold').length === ALERTS.length;
      const answer = shown ? JSON.stringify(await graphql(DASHBOARD_QUERY, variables)) : '';
      if (shown && answer === previous) {
        const reports = (JSON.parse(answer) as { reports: unknown[] }).reports.length;
        const settleSeconds = (performance.now() - started) / 1000;
        return { variables, events, kpis: kpis.length, insights: insights.length, reports, settleSeconds };
      }
      if (Date.now() > deadline)
        throw new Error(
          `seeding: the dashboard did not settle in ${SETTLE_TIMEOUT_MS / 1000} s: ${JSON.stringify(kpis)}`,
        );
      previous = answer;
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    }
  } finally {
    for (const worker of workers.reverse()) await worker.close();
  }
}
