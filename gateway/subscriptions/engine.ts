// The gateway's subscription engine: plans a client subscription, puts it in the group of identical
// subscriptions (one execution per event for all of them), catches it up (snapshot or replay after a
// cursor) and hands the transport a bounded queue of results to write.
import { GraphQLError, print, type DocumentNode, type ExecutionResult } from 'graphql';
import { authorize, type Principal } from '../../lib/auth.ts';
import { appError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { decodeCursor } from '../../streams/cursor.ts';
import type { StreamFeeds } from '../../streams/feeds.ts';
import type { Caller, SubgraphFetch } from '../execution/subgraphFetcher.ts';
import type { LoadedSupergraph } from '../execution/supergraph.ts';
import { feedFilterOf, subjectsOf } from './bindings.ts';
import { StreamGroup, UpstreamGroup, type Group, type GroupSpec, type Member } from './groups.ts';
import { subscriptionMetrics } from './metrics.ts';
import { Outbox } from './outbox.ts';
import { primaryOf } from './primary.ts';
import type { UpstreamSubscriptions } from './upstream.ts';

/** One client subscription to start. */
export interface SubscribeRequest {
  supergraph: LoadedSupergraph;
  document: DocumentNode;
  operationName?: string | null;
  variables: Record<string, unknown>;
  principal: Principal;
  caller: Caller;
  /** A cursor from the transport (SSE Last-Event-ID); the field's resume argument wins over it. */
  resumeAfter?: string;
  transport: 'ws' | 'sse';
  /** The subscriber's queue stayed full: the transport closes it with a clear code. */
  onOverflow: () => void;
}

/** Starts and groups subscriptions. */
export class SubscriptionEngine {
  private readonly groups = new Map<string, Group>();
  private readonly documentKeys = new WeakMap<DocumentNode, string>();
  private readonly versions = new WeakMap<LoadedSupergraph, number>();
  private version = 0;
  private upstreamSubscriptions = 0;
  private readonly options: {
    feeds?: StreamFeeds;
    fetch: SubgraphFetch;
    upstream: UpstreamSubscriptions;
    logger: Logger;
    /** Results a subscriber may have queued before it is closed as too slow. */
    capacity: number;
  };

  constructor(options: SubscriptionEngine['options']) {
    this.options = options;
  }

  /** Starts a subscription: its queue of results, or the errors that refuse it. */
  async subscribe(request: SubscribeRequest): Promise<Outbox | ExecutionResult> {
    try {
      return await this.start(request);
    } catch (error) {
      const graphQLError =
        error instanceof GraphQLError ? error : appError('INTERNAL_SERVER_ERROR', (error as Error).message);
      if (!(error instanceof GraphQLError))
        this.options.logger.error({ err: error }, 'subscription failed to start');
      return { errors: [graphQLError] };
    }
  }

  private async start(request: SubscribeRequest): Promise<Outbox> {
    const { supergraph, principal } = request;
    authorize(principal, 'subscribe');
    const planned = supergraph.plan(request.document, request.operationName);
    const node = planned.plan.node;
    if (node?.kind !== 'Subscription') throw appError('BAD_REQUEST', 'expected a subscription operation');
    const serviceName = node.primary.serviceName;
    const subgraphSchema = supergraph.subgraphSchemas.get(serviceName)!;
    const primary = primaryOf(
      node.primary,
      subgraphSchema,
      request.variables,
      (field) => supergraph.bindings.get(field)?.resumeArgument,
    );
    const { field } = primary;
    const binding = supergraph.bindings.get(field);
    const shared = Object.fromEntries(
      Object.entries(request.variables).filter(([name]) => !primary.resumeVariables.includes(name)),
    );
    // Subgraph-served fields share nothing but the connection: what a subgraph sends a new
    // subscriber first (say, the last known state) must reach that subscriber, not only the first one.
    const key = [
      binding ? '' : `upstream#${++this.upstreamSubscriptions}`,
      this.versionOf(supergraph),
      this.documentKey(request.document),
      request.operationName ?? '',
      JSON.stringify(shared),
      principal.tenant,
      [...principal.roles].sort().join(','),
    ].join('\u0000');
    const spec: GroupSpec = {
      key,
      supergraph,
      planned,
      document: request.document,
      operationName: request.operationName,
      variables: request.variables,
      primary,
      caller: request.caller,
      fetch: this.options.fetch,
      logger: this.options.logger,
    };
    let group = this.groups.get(key);
    if (binding) {
      const { feeds } = this.options;
      if (!feeds)
        throw appError('SERVICE_UNAVAILABLE', `${field} needs NATS, which this gateway is not connected to`);
      const cursor =
        (binding.resumeArgument ? primary.args[binding.resumeArgument] : undefined) ?? request.resumeAfter;
      const after = typeof cursor === 'string' ? decodeCursor(cursor, binding.stream) : undefined;
      if (cursor != null && after === undefined)
        throw appError('BAD_USER_INPUT', `${JSON.stringify(cursor)} is not a cursor of ${field}`);
      if (!group) {
        const subjects = subjectsOf(binding, principal.tenant, primary.args);
        const filter = feedFilterOf(binding, principal.tenant);
        const created: StreamGroup = new StreamGroup(spec, binding, subjects, filter, feeds, () =>
          this.untrack(created),
        );
        this.track((group = created));
      }
      const streamGroup = group as StreamGroup;
      // A feed that could not start (NATS unreachable or stalled) fails this group for good: forget it, so
      // that the next subscriber tries a new one instead of joining a group that can never be ready.
      await streamGroup.ready.catch((error: unknown) => {
        this.untrack(streamGroup);
        this.options.logger.warn({ err: error, field }, 'live feed could not start');
        throw appError('SERVICE_UNAVAILABLE', `the live feed of ${field} could not start; try again`);
      });
      if (streamGroup.ended)
        throw appError('SERVICE_UNAVAILABLE', `the live feed of ${field} stopped; try again`);
      const member = this.join(streamGroup, request, true);
      void this.catchUp(streamGroup, member, after).catch((error: unknown) => {
        this.options.logger.error({ err: error }, 'subscription catch-up failed');
        const result = {
          errors: [{ message: 'could not replay the stream', extensions: { code: 'SERVICE_UNAVAILABLE' } }],
        };
        member.outbox.offer({ result, json: () => JSON.stringify(result) });
        member.outbox.finish();
      });
      return member.outbox;
    }
    if (!group) {
      group = new UpstreamGroup(spec, this.options.upstream);
      this.track(group);
    }
    return this.join(group, request, false).outbox;
  }

  /** Replays after a cursor, or gives the latest value of each subject, then lets live results through. */
  private async catchUp(group: StreamGroup, member: Member, after: number | undefined): Promise<void> {
    const { feeds } = this.options;
    const { binding } = group;
    const position = group.position;
    const deliver = async (message: { seq: number; subject: string; body: unknown }) => {
      if (!group.subjects.has(message.subject) || member.outbox.isClosed) return;
      const delivery = await group.resultFor(message);
      if (delivery) await member.outbox.push(delivery);
    };
    if (after !== undefined) {
      await feeds!.replay(binding.stream, group.filter, after, position, deliver);
    } else if (binding.snapshot) {
      const latest = await Promise.all(
        [...group.subjects].map((subject) => feeds!.latest(binding.stream, subject)),
      );
      const upToPosition = latest
        .filter((m) => m !== undefined && m.seq <= position)
        .sort((a, b) => a!.seq - b!.seq);
      for (const message of upToPosition) await deliver(message!);
    }
    member.watermark = Math.max(position, after ?? 0);
    group.release(member, binding.conflate);
  }

  private join(group: Group, request: SubscribeRequest, catchingUp: boolean): Member {
    const member: Member = {
      caller: request.caller,
      expiresAt: request.principal.expiresAt,
      watermark: 0,
      held: catchingUp ? [] : undefined,
      outbox: new Outbox({
        capacity: this.options.capacity,
        onDrop: () => subscriptionMetrics.conflated.inc(),
        onOverflow: () => {
          subscriptionMetrics.overflows.inc();
          member.outbox.close();
          request.onOverflow();
        },
        onClose: () => {
          subscriptionMetrics.active.dec({ transport: request.transport });
          group.members.delete(member);
          if (group.members.size === 0 && this.untrack(group)) group.stop();
        },
      }),
    };
    group.members.add(member);
    subscriptionMetrics.active.inc({ transport: request.transport });
    return member;
  }

  private track(group: Group): void {
    this.groups.set(group.spec.key, group);
    subscriptionMetrics.groups.inc();
  }

  /** Forgets a group (a new subscriber gets a new one): false if it was forgotten already. */
  private untrack(group: Group): boolean {
    if (this.groups.get(group.spec.key) !== group) return false;
    this.groups.delete(group.spec.key);
    subscriptionMetrics.groups.dec();
    return true;
  }

  private documentKey(document: DocumentNode): string {
    let key = this.documentKeys.get(document);
    if (key === undefined) this.documentKeys.set(document, (key = print(document)));
    return key;
  }

  private versionOf(supergraph: LoadedSupergraph): number {
    let version = this.versions.get(supergraph);
    if (version === undefined) this.versions.set(supergraph, (version = ++this.version));
    return version;
  }

  /** Ends every subscription (the transports tell clients to resume at their cursor). */
  close(): void {
    for (const group of this.groups.values()) {
      for (const member of group.members) member.outbox.finish();
      group.stop();
    }
    this.groups.clear();
  }
}
