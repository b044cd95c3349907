// Groups of identical subscriptions (same operation, variables and auth scope): each event is turned
// into a result once per group (entity fetches, shaping, serialization) and offered to every member.
import type { FetchNode, PlanNode } from '@apollo/query-planner';
import { GraphQLError, type ExecutionResult, type GraphQLFormattedError } from 'graphql';
import type { Logger } from '../../lib/logger.ts';
import { encodeCursor } from '../../streams/cursor.ts';
import { ATTR_COMPONENT, SpanKind, withSpan } from '../../lib/telemetry.ts';
import type { FeedMessage, StreamFeeds } from '../../streams/feeds.ts';
import { serializeResult, shapeResponse } from '../execution/execute.ts';
import { executePlan, type ResultMap } from '../execution/planExecutor.ts';
import type { Caller, SubgraphFetch } from '../execution/subgraphFetcher.ts';
import type { LoadedSupergraph, PlannedOperation } from '../execution/supergraph.ts';
import type { StreamBinding } from './bindings.ts';
import { subscriptionMetrics } from './metrics.ts';
import type { Delivery, Outbox } from './outbox.ts';
import { primaryFromPayload, type Primary } from './primary.ts';
import type { UpstreamSubscriptions } from './upstream.ts';
import type { DocumentNode } from 'graphql';

/** One client subscription inside a group. */
export interface Member {
  outbox: Outbox;
  /** Highest stream sequence delivered: nothing at or below it is delivered again. */
  watermark: number;
  /** While it catches up (snapshot, replay), live results wait here. */
  held?: Array<{ seq: number; key: string; delivery: Delivery }>;
  /** The member's own credentials, and when they expire. */
  caller: Caller;
  expiresAt?: number;
}

/** What every group is built from. */
export interface GroupSpec {
  key: string;
  supergraph: LoadedSupergraph;
  planned: PlannedOperation;
  document: DocumentNode;
  operationName?: string | null;
  variables: Record<string, unknown>;
  primary: Primary;
  /** The first subscriber's credentials: the upstream subscription of a subgraph-served group uses them. */
  caller: Caller;
  fetch: SubgraphFetch;
  logger: Logger;
}

const MAX_HELD = 10_000;
const MEMO_SIZE = 256;

/** A group: members, the shared caller, and result building from a primary result. */
export abstract class Group {
  readonly members = new Set<Member>();
  readonly spec: GroupSpec;
  /** Deliveries to members happen in event order even though results are built concurrently. */
  protected tail: Promise<void> = Promise.resolve();

  constructor(spec: GroupSpec) {
    this.spec = spec;
  }

  /**
   * The credentials of the group's fetches: the member's whose token lives longest (members share
   * tenant and roles by construction, so the answers are the same for all of them).
   */
  protected get caller(): Caller {
    let chosen: Member | undefined;
    for (const member of this.members) {
      if (!chosen || (member.expiresAt ?? Infinity) > (chosen.expiresAt ?? Infinity)) chosen = member;
    }
    return chosen?.caller ?? this.spec.caller;
  }

  /** Builds the client result from a primary result: entity fetches of the plan's rest, then shaping. */
  protected async resultOf(
    primary: ExecutionResult | { data?: unknown; errors?: readonly GraphQLFormattedError[] },
    cursor?: string,
  ): Promise<Delivery> {
    subscriptionMetrics.executions.inc({ field: this.spec.primary.field });
    const { supergraph, planned, document, operationName, variables } = this.spec;
    const errors = (primary.errors ?? []).map((e) =>
      e instanceof GraphQLError ? e : new GraphQLError(e.message, { path: e.path, extensions: e.extensions }),
    );
    const data = (primary.data ?? null) as ResultMap | null;
    const node = planned.plan.node as { rest?: PlanNode } | undefined;
    if (data && node?.rest) {
      await executePlan(
        {
          supergraphSchema: supergraph.supergraphSchema,
          operation: planned.operation,
          variables,
          caller: this.caller,
          fetch: this.spec.fetch,
          errors,
        },
        node.rest,
        data,
      );
    }
    const result = data
      ? shapeResponse(supergraph.schema, document, operationName, variables, data, errors)
      : { data: null, errors };
    let json: string | undefined;
    return { result, cursor, json: () => (json ??= serializeResult(result)) };
  }

  protected deliver(seq: number, key: string, delivery: Delivery, conflate: boolean): void {
    let delivered = 0;
    for (const member of this.members) {
      if (member.held) {
        if (member.held.length >= MAX_HELD)
          member.outbox.offer(delivery); // overflows the outbox: closed
        else member.held.push({ seq, key, delivery });
        continue;
      }
      if (seq <= member.watermark) continue;
      member.watermark = seq;
      member.outbox.offer(delivery, conflate ? key : undefined);
      delivered++;
    }
    // Counted once per value, not per member: a label lookup per subscriber costs at 10,000 of them.
    if (delivered) subscriptionMetrics.deliveries.inc({ field: this.spec.primary.field }, delivered);
  }

  /** Lets a member that caught up receive live results, skipping what it already has. */
  release(member: Member, conflate: boolean): void {
    const held = member.held ?? [];
    member.held = undefined;
    for (const { seq, key, delivery } of held) {
      if (seq <= member.watermark) continue;
      member.watermark = seq;
      member.outbox.offer(delivery, conflate ? key : undefined);
    }
  }

  /** Ends every member after what it was already given: with `errors` last, when the source failed. */
  protected async endMembers(errors?: readonly unknown[]): Promise<void> {
    await this.tail;
    const result = errors ? { errors } : undefined;
    for (const member of this.members) {
      if (result) member.outbox.offer({ result, json: () => JSON.stringify(result) });
      member.outbox.finish();
    }
  }

  abstract stop(): void;
}

/** A group served from a stream feed: the gateway reads JetStream itself. */
export class StreamGroup extends Group {
  readonly binding: StreamBinding;
  readonly subjects: Set<string>;
  readonly filter: string;
  /** The feed position this group has seen: members joining now get everything after it live. */
  position = 0;
  private readonly memo = new Map<number, Promise<Delivery | undefined>>();
  private detach?: () => void;
  readonly ready: Promise<void>;
  /** Its feed ended for good: nothing more will come, and nobody may join. */
  ended = false;

  /** `onEnd` is told when the feed ends, after which the group only finishes its members. */
  constructor(
    spec: GroupSpec,
    binding: StreamBinding,
    subjects: string[],
    filter: string,
    feeds: StreamFeeds,
    onEnd: () => void,
  ) {
    super(spec);
    this.binding = binding;
    this.subjects = new Set(subjects);
    this.filter = filter;
    const end = () => {
      this.ended = true;
      onEnd();
      const message = `the live feed of ${spec.primary.field} stopped; subscribe again from the last cursor received`;
      void this.endMembers([{ message, extensions: { code: 'SERVICE_UNAVAILABLE' } }]);
    };
    this.ready = feeds
      .attach(binding.stream, filter, (message) => this.onMessage(message), end)
      .then((handle) => {
        this.position = Math.max(this.position, handle.position);
        this.detach = () => handle.detach();
      });
  }

  private onMessage(message: FeedMessage): void {
    this.position = message.seq;
    if (!this.subjects.has(message.subject) || this.members.size === 0) return;
    // A traced message (the calculator's trace of an ingest) carries its trace on into the delivery.
    const result = message.trace
      ? withSpan(
          `subscription deliver ${this.spec.primary.field}`,
          {
            kind: SpanKind.CONSUMER,
            parent: message.trace,
            attributes: {
              [ATTR_COMPONENT]: 'gateway',
              'pulsegraph.subscription.field': this.spec.primary.field,
              'pulsegraph.subscribers': this.members.size,
            },
          },
          () => this.resultFor(message),
        )
      : this.resultFor(message);
    this.tail = this.tail
      .then(() => result)
      .then(
        (delivery) => delivery && this.deliver(message.seq, message.subject, delivery, this.binding.conflate),
      )
      .catch((error: unknown) => this.spec.logger.error({ err: error }, 'subscription event failed'));
  }

  /** The result of one stream message for this group, built at most once. */
  resultFor(message: FeedMessage): Promise<Delivery | undefined> {
    let result = this.memo.get(message.seq);
    if (!result) {
      result = this.fromMessage(message);
      this.memo.set(message.seq, result);
      if (this.memo.size > MEMO_SIZE) this.memo.delete(this.memo.keys().next().value!);
    }
    return result;
  }

  private async fromMessage(message: FeedMessage): Promise<Delivery | undefined> {
    const { seq, body } = message;
    const payload = (body as { payload?: ResultMap } | null)?.payload;
    const selected = this.binding.select ? payload?.[this.binding.select] : payload;
    if (!selected || typeof selected !== 'object') return undefined;
    const cursor = encodeCursor(seq, this.binding.stream);
    const value = { ...(selected as ResultMap) };
    if (this.binding.cursorField) value[this.binding.cursorField] = cursor;
    const { primary, supergraph, fetch } = this.spec;
    const subgraphSchema = supergraph.subgraphSchemas.get(primary.fetch.serviceName)!;
    const primaryResult = await primaryFromPayload(primary, subgraphSchema, value, this.caller, fetch);
    return this.resultOf(primaryResult, cursor);
  }

  stop(): void {
    this.detach?.();
    this.memo.clear();
  }
}

/** A group served by a subgraph's own subscription over graphql-ws. */
export class UpstreamGroup extends Group {
  private readonly unsubscribe: () => void;
  private sequence = 0;

  constructor(spec: GroupSpec, upstream: UpstreamSubscriptions) {
    super(spec);
    const fetch: FetchNode = spec.primary.fetch;
    this.unsubscribe = upstream.subscribe(
      fetch.serviceName,
      spec.caller.authorization,
      { query: fetch.operation, variables: spec.primary.variables, operationName: fetch.operationName },
      {
        next: (result) => {
          const seq = ++this.sequence;
          const built = this.resultOf(result);
          this.tail = this.tail
            .then(() => built)
            .then((delivery) => this.deliver(seq, String(seq), delivery, false))
            .catch((error: unknown) => this.spec.logger.error({ err: error }, 'subscription event failed'));
        },
        error: (error) => void this.end(error),
        complete: () => void this.end(),
      },
    );
  }

  private end(error?: unknown): Promise<void> {
    if (!error) return this.endMembers();
    // graphql-ws hands a subgraph's refusal (an `error` message) over as its GraphQL errors, each with
    // the subgraph's own code (NOT_FOUND, FORBIDDEN...); anything else means the subgraph failed.
    const message = error instanceof Error ? error.message : 'the subgraph ended the subscription';
    return this.endMembers(
      Array.isArray(error) ? error : [{ message, extensions: { code: 'SERVICE_UNAVAILABLE' } }],
    );
  }

  stop(): void {
    this.unsubscribe();
  }
}
