// Process metrics: prom-client's event-loop delay gauges (the Grafana dashboard's "event loop lag" panel)
// report a stall of the loop in full.
import { setTimeout as sleep } from 'node:timers/promises';
import { register } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { collectProcessMetrics } from './metrics.ts';

/** The largest event-loop delay since the last reading (the lag gauge's collect sets it and resets). */
const lagMax = async () => {
  await register.getSingleMetric('nodejs_eventloop_lag_seconds')!.get();
  const metric = await register.getSingleMetric('nodejs_eventloop_lag_max_seconds')!.get();
  return metric.values[0]!.value;
};

describe('process metrics', () => {
  it('report an event-loop stall of 300 ms as a delay of about 300 ms', async () => {
    collectProcessMetrics();
    collectProcessMetrics(); // a second service in the same process registers nothing twice
    await sleep(100);
    await lagMax(); // and resets
    // A reset forgets when the histogram last sampled: it needs one sample before the stall.
    await sleep(50);
    const until = performance.now() + 300;
    while (performance.now() < until); // the stall
    await sleep(50);
    const lag = await lagMax();
    expect(lag).toBeGreaterThan(0.28);
    expect(lag).toBeLessThan(2);
  });
});
