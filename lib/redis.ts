// Redis pub/sub for ephemeral events (report progress); the only module that knows Redis channel names.
import { RedisPubSub, type PubSubRedisOptions } from 'graphql-redis-subscriptions';
import { Redis, type RedisOptions } from 'ioredis';
import { TENANT_PATTERN } from './auth.ts';
import type { Logger } from './logger.ts';

export type { RedisPubSub } from 'graphql-redis-subscriptions';

/** A progress event of one report generation, as the reportProgress subscription serves it. */
export interface ReportProgress {
  reportId: string;
  generationId: string;
  status: 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED';
  /** From 0 to 1. */
  progress: number;
  message?: string;
}

const connectionOptions: RedisOptions = {
  // Reconnect forever, backing off up to 5 s; readiness reports the outage meanwhile.
  retryStrategy: (attempt) => Math.min(attempt * 250, 5_000),
  // Progress is ephemeral: a command fails after a few reconnects rather than waiting for Redis.
  maxRetriesPerRequest: 3,
};

// Subscriptions still open at close() end a moment later, as their WebSockets finish closing; their
// UNSUBSCRIBE would fail on the closed connection, which holds no subscription anyway.
class ClosingRedisPubSub extends RedisPubSub {
  #closed = false;
  override unsubscribe(subId: number): void {
    if (!this.#closed) super.unsubscribe(subId);
  }
  override close(): Promise<'OK'[]> {
    this.#closed = true;
    return super.close();
  }
}

/** Connects a RedisPubSub (JSON payloads) over two connections, since a subscribing one can only subscribe. */
export function createRedisPubSub(url: string, logger?: Logger): RedisPubSub {
  // graphql-redis-subscriptions types its clients with its own ioredis 5; ioredis 6 has the same pub/sub API.
  const connect = (role: string) =>
    new Redis(url, connectionOptions).on('error', (error: Error) =>
      logger?.warn({ err: error }, `redis ${role}: ${error.message}`),
    ) as unknown as PubSubRedisOptions['publisher'];
  return new ClosingRedisPubSub({ publisher: connect('publisher'), subscriber: connect('subscriber') });
}

/** Whether both connections are up and Redis answers PING; answers at once while disconnected. */
export async function pingRedis(pubsub: RedisPubSub): Promise<boolean> {
  const publisher = pubsub.getPublisher();
  if (publisher.status !== 'ready' || pubsub.getSubscriber().status !== 'ready') return false;
  return (await publisher.ping()) === 'PONG';
}

/** The channel of a report's progress events: `reports:<tenant>:progress:<reportId>`. */
export function reportProgressChannel(tenant: string, reportId: string): string {
  if (!TENANT_PATTERN.test(tenant)) {
    throw new Error(
      `expected a tenant id of letters, digits, "_" or "-" (at most 64), but got ${JSON.stringify(tenant)}`,
    );
  }
  if (!reportId) throw new Error('expected a non-empty report id, but got ""');
  return `reports:${tenant}:progress:${reportId}`;
}

/** Publishes a progress event to the tenant's subscribers of that report. */
export async function publishReportProgress(
  pubsub: RedisPubSub,
  tenant: string,
  progress: ReportProgress,
): Promise<void> {
  await pubsub.publish(reportProgressChannel(tenant, progress.reportId), progress);
}
