import type { Config } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import { isMainModule, runService, type RunningService } from '../../lib/service.ts';
import { startPlatformSubgraph } from '../../lib/subgraphServer.ts';
import { resolvers } from './resolvers.ts';

/** Starts the insights subgraph: anomalies, trends and thresholds. */
export function startInsights(config: Config, logger: Logger): Promise<RunningService> {
  const schemaUrl = new URL('./schema.graphql', import.meta.url);
  return startPlatformSubgraph({
    name: 'insights',
    schemaUrl,
    resolvers,
    config,
    logger,
    port: config.INSIGHTS_PORT,
  });
}

if (isMainModule(import.meta.url)) await runService('insights', ['DATABASE_URL', 'NATS_URL'], startInsights);
