// What the simulator produces: the KPIs it defines and the kinds of events it sends, in the API's input shapes.

/** The contract's Aggregation enum. */
export type Aggregation =
  'SUM' | 'COUNT' | 'AVG' | 'MIN' | 'MAX' | 'DISTINCT_COUNT' | 'P50' | 'P95' | 'P99' | 'FORMULA';

/** The contract's EventType enum. */
export type EventType = 'USER_ACTION' | 'SYSTEM_METRIC' | 'BUSINESS_EVENT' | 'CUSTOM_EVENT';

/** A KPI definition as `defineKpi(input:)` takes it. */
export interface KpiInput {
  code: string;
  name: string;
  description?: string;
  unit?: string;
  eventName?: string;
  aggregation: Aggregation;
  valueField?: string;
  formula?: string;
  dimensions?: string[];
  refreshSeconds?: number;
  window?: string;
}

/** An event as `ingestEvents(events:)` takes it. */
export interface EventInput {
  id?: string;
  type: EventType;
  name: string;
  source: string;
  timestamp: string;
  attributes: Record<string, unknown>;
}

/** The business line an event belongs to; each follows its own seasonal curve. */
export type Segment = 'shop' | 'saas';

/** One kind of event the simulator sends. */
export interface EventKind {
  name: string;
  type: EventType;
  segment: Segment;
  /** Share of all events at average load (relative; the kinds need not sum to 100). */
  weight: number;
}

/**
 * The event mix at average load. The shop funnel keeps page views far above sessions and sessions
 * ~30x above orders (a ~3% conversion); about 1% of API requests fail.
 */
export const EVENT_KINDS: readonly EventKind[] = [
  { name: 'page.viewed', type: 'USER_ACTION', segment: 'shop', weight: 55 },
  { name: 'session.started', type: 'USER_ACTION', segment: 'shop', weight: 9 },
  { name: 'checkout.completed', type: 'BUSINESS_EVENT', segment: 'shop', weight: 0.3 },
  { name: 'user.signed_up', type: 'BUSINESS_EVENT', segment: 'saas', weight: 0.08 },
  { name: 'api.request', type: 'SYSTEM_METRIC', segment: 'saas', weight: 35 },
  { name: 'api.error', type: 'SYSTEM_METRIC', segment: 'saas', weight: 0.4 },
];

/** The KPIs the simulator defines, in an order where every formula follows the KPIs it references. */
export const KPIS: readonly KpiInput[] = [
  {
    code: 'web.page_views',
    name: 'Page views',
    description: 'Pages viewed in the shop, web and app',
    eventName: 'page.viewed',
    aggregation: 'COUNT',
    dimensions: ['country', 'device'],
  },
  {
    code: 'web.sessions',
    name: 'Sessions',
    description: 'Visits started in the shop',
    eventName: 'session.started',
    aggregation: 'COUNT',
  },
  {
    code: 'signups',
    name: 'Sign-ups',
    description: 'New SaaS accounts by plan',
    eventName: 'user.signed_up',
    aggregation: 'COUNT',
    dimensions: ['plan'],
  },
  {
    code: 'checkout.orders',
    name: 'Orders',
    description: 'Completed checkouts',
    eventName: 'checkout.completed',
    aggregation: 'COUNT',
    dimensions: ['country'],
  },
  {
    code: 'checkout.revenue',
    name: 'Revenue',
    description: 'Sum of completed order amounts',
    unit: 'EUR',
    eventName: 'checkout.completed',
    aggregation: 'SUM',
    valueField: 'amount',
    dimensions: ['country'],
  },
  {
    code: 'checkout.aov',
    name: 'Average order value',
    unit: 'EUR',
    eventName: 'checkout.completed',
    aggregation: 'AVG',
    valueField: 'amount',
  },
  {
    code: 'checkout.conversion',
    name: 'Conversion rate',
    description: 'Orders per session',
    unit: '%',
    aggregation: 'FORMULA',
    formula: 'checkout.orders / web.sessions * 100',
  },
  {
    code: 'api.latency_p95',
    name: 'API latency p95',
    unit: 'ms',
    eventName: 'api.request',
    aggregation: 'P95',
    valueField: 'latency_ms',
    dimensions: ['endpoint'],
    window: '1h',
  },
  {
    code: 'api.errors',
    name: 'API errors',
    eventName: 'api.error',
    aggregation: 'COUNT',
    window: '1h',
  },
  {
    code: 'users.active',
    name: 'Active users',
    description: 'Distinct users who viewed a page',
    eventName: 'page.viewed',
    aggregation: 'DISTINCT_COUNT',
    valueField: 'user_id',
  },
];
