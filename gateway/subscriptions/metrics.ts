// Prometheus instruments of the subscription engine (served on the gateway's /metrics).
import { Counter, Gauge } from 'prom-client';

export const subscriptionMetrics = {
  executions: new Counter({
    name: 'pulsegraph_subscription_executions_total',
    help: 'Subscription results computed (entity fetches and shaping), once per event and shared group',
    labelNames: ['field'],
  }),
  deliveries: new Counter({
    name: 'pulsegraph_subscription_deliveries_total',
    help: 'Subscription results queued for subscribers',
    labelNames: ['field'],
  }),
  conflated: new Counter({
    name: 'pulsegraph_subscription_conflated_total',
    help: 'Queued subscription results replaced by a newer one of the same key (slow subscribers)',
  }),
  overflows: new Counter({
    name: 'pulsegraph_subscription_overflows_total',
    help: 'Subscribers closed because their queue stayed full',
  }),
  active: new Gauge({
    name: 'pulsegraph_subscriptions_active',
    help: 'Client subscriptions being served',
    labelNames: ['transport'],
  }),
  groups: new Gauge({
    name: 'pulsegraph_subscription_groups',
    help: 'Groups of identical subscriptions (same operation, variables and auth scope) sharing one execution',
  }),
  sockets: new Gauge({ name: 'pulsegraph_websockets_open', help: 'Open client WebSockets' }),
};
