import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../lib/logger.ts';
import { streamDefinitions } from './definitions.ts';

/** A live NATS connection with its JetStream client. */
export interface Broker {
  nc: NatsConnection;
  js: JetStreamClient;
  close(): Promise<void>;
}

/** How long a process starting while NATS is down (restarting, or not up yet) keeps trying before it gives up. */
const FIRST_CONNECT_MS = 30_000;

/**
 * Connects to NATS, retrying for up to 30 s at start (a worker may start while nats-server restarts),
 * then reconnecting forever after the first success; logs connection changes.
 */
export async function connectBroker(url: string, name: string, logger?: Logger): Promise<Broker> {
  const options = {
    servers: url,
    name,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // Without it nats.js builds a RequestError and a TimeoutError, stack traces and all, for every request
    // up front, in case it fails (JetStream API calls, consumer fetches; it was 16 % of the metrics
    // subgraph's CPU under ingest load while publishes were requests). Failures still carry their message
    // and cause.
    noAsyncTraces: true,
  };
  const nc = await retryWithin(
    () => connect({ ...options, timeout: 5_000 }),
    () => true,
    (error) => logger?.warn({ err: error }, 'nats not reachable yet; retrying'),
  );
  if (logger) {
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect' || status.type === 'reconnect' || status.type === 'error') {
          logger.warn({ nats: status.type }, `nats ${status.type}`);
        }
      }
    })();
  }
  return {
    nc,
    js: jetstream(nc),
    async close() {
      if (!nc.isClosed()) await nc.drain();
    },
  };
}

/**
 * Runs a JetStream setup step, and again while nats-server leaves it unanswered (a request timeout, no
 * responders), for up to 30 s: right after a nats-server restart JetStream may not answer yet, and on a
 * busy machine starting every process at once a first answer can come after the request's 5 s.
 */
export function retryUnanswered<T>(step: () => Promise<T>): Promise<T> {
  return retryWithin(step, (error) => error instanceof Error && /timeout|no responders/i.test(error.message));
}

/** Runs `step`, and again every 500 ms while it fails with a retryable error, for up to 30 s. */
async function retryWithin<T>(
  step: () => Promise<T>,
  retryable: (error: unknown) => boolean,
  onRetry?: (error: unknown) => void,
): Promise<T> {
  const deadline = Date.now() + FIRST_CONNECT_MS;
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (!retryable(error) || Date.now() > deadline) throw error;
      onRetry?.(error);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** Creates or updates every platform stream; safe to run from every process at start (retryUnanswered). */
export async function ensureStreams(nc: NatsConnection): Promise<void> {
  await retryUnanswered(() => ensureStreamsOnce(nc));
}

async function ensureStreamsOnce(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const definition of streamDefinitions) {
    try {
      await jsm.streams.info(definition.name);
      await jsm.streams.update(definition.name, definition);
    } catch (error) {
      if (!(error instanceof JetStreamApiError) || error.status !== 404) throw error;
      try {
        await jsm.streams.add(definition);
      } catch (addError) {
        // Another process created it between our info and add: nats-server says "already in use", or,
        // when both adds race (2.9), "subjects overlap"; either way the stream must exist now.
        if (
          !(addError instanceof JetStreamApiError) ||
          !/already in use|subjects overlap/i.test(addError.message)
        )
          throw addError;
        await jsm.streams.info(definition.name);
      }
    }
  }
}

/** Answers whether the broker connection is up (for readiness). */
export async function pingBroker(nc: NatsConnection): Promise<boolean> {
  if (nc.isClosed()) return false;
  try {
    await nc.flush();
    return true;
  } catch {
    return false;
  }
}

/** The stream sequence of the last message on a subject, or 0 when there is none. */
export async function lastSequence(nc: NatsConnection, stream: string, subject: string): Promise<number> {
  // No account-info request first (checkAPI): one round trip; a broker without JetStream fails the get alike.
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const message = await jsm.streams.getMessage(stream, { last_by_subj: subject });
  return message?.seq ?? 0;
}
