import type { Config } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import { isMainModule, runService, type RunningService } from '../../lib/service.ts';
import { startPlatformSubgraph } from '../../lib/subgraphServer.ts';
import { resolvers } from './resolvers.ts';

/** Starts the metadata subgraph: KPI definitions in Postgres, changes announced on NATS. */
export function startMetadata(config: Config, logger: Logger): Promise<RunningService> {
  const schemaUrl = new URL('./schema.graphql', import.meta.url);
  return startPlatformSubgraph({
    name: 'metadata',
    schemaUrl,
    resolvers,
    config,
    logger,
    port: config.METADATA_PORT,
  });
}

if (isMainModule(import.meta.url)) await runService('metadata', ['DATABASE_URL', 'NATS_URL'], startMetadata);
