import type { Config } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import { isMainModule, runService, type RunningService } from '../../lib/service.ts';
import { startPlatformSubgraph } from '../../lib/subgraphServer.ts';
import { resolvers } from './resolvers.ts';

/** Starts the metrics subgraph: events in, time-bucketed KPI values out. */
export function startMetrics(config: Config, logger: Logger): Promise<RunningService> {
  const schemaUrl = new URL('./schema.graphql', import.meta.url);
  return startPlatformSubgraph({
    name: 'metrics',
    schemaUrl,
    resolvers,
    config,
    logger,
    port: config.METRICS_PORT,
  });
}

if (isMainModule(import.meta.url)) await runService('metrics', ['DATABASE_URL', 'NATS_URL'], startMetrics);
