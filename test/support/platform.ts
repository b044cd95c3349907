// The in-process platform of scripts/localPlatform.ts over the suite's shared Postgres cluster.
import { startLocalPlatform, type LocalPlatform } from '../../scripts/localPlatform.ts';
import { services, TEST_APP_PASSWORD } from './services.ts';

export type { GraphQLBody } from '../../scripts/localPlatform.ts';

/** The platform as integration tests use it. */
export type TestPlatform = LocalPlatform;

/** Starts the platform in-process over a fresh database (see startLocalPlatform). */
export function startTestPlatform(
  options: { workers?: boolean; production?: boolean; env?: Record<string, string> } = {},
): Promise<TestPlatform> {
  return startLocalPlatform({
    ...options,
    clusterAdminUrl: services().pgAdminUrl,
    redisUrl: services().redisUrl,
    appPassword: TEST_APP_PASSWORD,
  });
}
