// GraphQL over WebSocket (graphql-ws, `graphql-transport-ws`) on the gateway's /graphql path.
// Close codes: 4400 bad message, 4401 subscribe before the ack, 4403 missing, invalid or expired
// token, 4406 wrong subprotocol, 4408 no connection_init in time, 4409 duplicate id, 4429 second
// connection_init, 1013 too slow a reader, 1001 gateway shutting down (the last two: resume by cursor).
import { GraphQLError, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { CloseCode, type Context } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { bearerToken, type Principal, type TokenVerifier } from '../../lib/auth.ts';
import type { Logger } from '../../lib/logger.ts';
import { webSocketOriginAllowed } from '../httpSecurity.ts';
import type { Caller } from '../execution/subgraphFetcher.ts';
import type { Gateway } from '../gateway.ts';
import { subscriptionMetrics } from '../subscriptions/metrics.ts';
import type { Delivery, Outbox } from '../subscriptions/outbox.ts';
import { nextPrefix, writeNextFrame } from './frames.ts';
import { keepAlive } from './keepAlive.ts';
import { admitOperation, prepareOperation, runOperation, type PreparedOperation } from './operations.ts';

/** Close code for a subscriber too slow to keep up: reconnect and resume from the last cursor. */
export const SLOW_CONSUMER = 1013;

type Extra = {
  socket: WebSocket;
  request: IncomingMessage;
  principal?: Principal;
  caller?: Caller;
  expiry?: NodeJS.Timeout;
};

interface OperationContext {
  principal: Principal;
  caller: Caller;
  socket: WebSocket;
  prepared: PreparedOperation;
  id: string;
}

/** Frames written to a socket and not yet handed to the kernel, per subscription, before the queue waits. */
const MAX_IN_FLIGHT = 8;

/**
 * Writes a subscription's results to the connection's socket as `next` frames around the result each
 * group serialized once (frames.ts), instead of letting graphql-ws serialize it again per subscriber.
 * graphql-ws still owns the protocol: it iterates what this returns, which ends when the queue ends and
 * every frame is written (then it sends `complete`), and its `return()` (client `complete`, socket
 * closed) closes the queue.
 */
function writeFrames(
  outbox: Outbox,
  socket: WebSocket,
  stream: Duplex,
  id: string,
): AsyncIterableIterator<ExecutionResult> {
  const prefix = nextPrefix(id);
  let inFlight = 0;
  let room: (() => void) | undefined;
  const written = () => {
    inFlight--;
    room?.();
  };
  const send = (delivery: Delivery) => {
    inFlight++;
    writeNextFrame(stream, prefix, delivery, written);
  };
  // While this subscriber keeps up, the fan-out writes its frames directly; the loop below writes what
  // was queued instead (frames in flight at the limit).
  outbox.writeDirectly((delivery) => {
    if (inFlight >= MAX_IN_FLIGHT || socket.readyState !== socket.OPEN) return false;
    send(delivery);
    return true;
  });
  const pumped = (async () => {
    for await (const delivery of outbox) {
      if (socket.readyState !== socket.OPEN) break;
      send(delivery);
      while (inFlight >= MAX_IN_FLIGHT && socket.readyState === socket.OPEN) {
        await new Promise<void>((resolve) => (room = resolve));
      }
    }
  })();
  const done = (): Promise<IteratorResult<ExecutionResult>> =>
    pumped.then(() => ({ value: undefined, done: true }));
  return {
    next: done,
    return: () => {
      outbox.close();
      room?.();
      return done();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** Serves graphql-ws on `server`'s upgrades to /graphql. */
export function attachWebSocket(
  server: Server,
  options: {
    gateway: Gateway;
    verifier: TokenVerifier;
    logger: Logger;
    connectionInitTimeoutMs: number;
    maxMessageBytes: number;
    /** Ping interval, and how long a pong may take before the socket is terminated; 0: no pings (WS_KEEPALIVE_MS). */
    keepAliveMs: number;
    /** Subscriptions one connection may run at once (MAX_SUBSCRIPTIONS_PER_CONNECTION). */
    maxSubscriptions: number;
    /** Browser origins allowed besides the gateway's own (CORS_ORIGINS). */
    corsOrigins?: readonly string[];
  },
) {
  const { maxSubscriptions } = options;
  // Without permessage-deflate `ws` writes every message to the socket at once, so frames.ts may write
  // `next` frames to the same socket in between (in order) instead of going through `ws`.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessageBytes,
    perMessageDeflate: false,
  });
  /** The socket under each WebSocket, which subscription frames are written to. */
  const streams = new WeakMap<WebSocket, Duplex>();
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (request.url?.split('?')[0] !== '/graphql') return socket.destroy();
    if (!webSocketOriginAllowed(request, options.corsOrigins ?? [])) {
      return void socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      streams.set(ws, socket);
      wss.emit('connection', ws, request);
    });
  };
  server.on('upgrade', onUpgrade);
  wss.on('connection', (ws: WebSocket) => {
    subscriptionMetrics.sockets.inc();
    ws.once('close', () => subscriptionMetrics.sockets.dec());
    keepAlive(ws, options.keepAliveMs);
  });
  const { gateway } = options;
  const graphqlWs = useServer<Record<string, unknown>, Extra>(
    {
      schema: () => gateway.supergraph.schema,
      connectionInitWaitTimeout: options.connectionInitTimeoutMs,
      onConnect: async (ctx: Context<Record<string, unknown>, Extra>) => {
        const header = ctx.connectionParams?.['authorization'] ?? ctx.extra.request.headers.authorization;
        const token = bearerToken(typeof header === 'string' ? header : undefined);
        try {
          if (!token) throw new Error('send connectionParams.authorization: Bearer <token>');
          ctx.extra.principal = await options.verifier.verify(token);
        } catch (error) {
          ctx.extra.socket.close(CloseCode.Forbidden, `Forbidden: ${(error as Error).message}`.slice(0, 120));
          return false;
        }
        ctx.extra.caller = { authorization: `Bearer ${token}` };
        const expiresAt = ctx.extra.principal.expiresAt;
        if (expiresAt !== undefined) {
          const close = () => ctx.extra.socket.close(CloseCode.Forbidden, 'Forbidden: token expired');
          ctx.extra.expiry = setTimeout(close, Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1));
          ctx.extra.expiry.unref();
        }
        return true;
      },
      onClose: (ctx) => clearTimeout(ctx.extra.expiry),
      onSubscribe: async (ctx, id, payload) => {
        const { principal, caller, socket } = ctx.extra;
        if (!principal || !caller) return [new GraphQLError('unauthenticated')];
        // graphql-ws has registered this id already, so the count includes it.
        const running = Object.keys(ctx.subscriptions).length;
        if (running > maxSubscriptions) {
          return [
            new GraphQLError(
              `this connection already runs ${running - 1} subscriptions, the maximum: complete one, or open another connection`,
              { extensions: { code: 'MAX_SUBSCRIPTIONS_EXCEEDED', maxSubscriptions } },
            ),
          ];
        }
        const prepared = await prepareOperation(gateway, payload, principal);
        if (Array.isArray(prepared)) return prepared as GraphQLError[];
        const limited = await admitOperation(gateway, prepared as PreparedOperation, payload, principal);
        if (limited) return [limited];
        const contextValue: OperationContext = {
          id,
          principal,
          caller,
          socket,
          prepared: prepared as PreparedOperation,
        };
        return {
          schema: gateway.supergraph.schema,
          document: (prepared as PreparedOperation).document,
          variableValues: payload.variables,
          operationName: payload.operationName,
          contextValue,
        };
      },
      execute: (args) => run(args),
      subscribe: (args) => run(args),
      // Query and mutation results arrive wrapped like subscription deliveries.
      onNext: (_ctx, _id, _payload, _args, result) =>
        (result as unknown as Delivery).result as ExecutionResult,
    },
    wss,
    0, // pings are keepAlive.ts's, spread over the interval
  );

  async function run(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> {
    const { id, principal, caller, socket, prepared } = args.contextValue as OperationContext;
    const outcome = await runOperation(
      gateway,
      {
        ...prepared,
        variables: args.variableValues,
        operationName: args.operationName,
      },
      {
        principal,
        caller,
        transport: 'ws',
        onOverflow: () => socket.close(SLOW_CONSUMER, 'too slow: reconnect and resume from your last cursor'),
      },
    );
    if (Symbol.asyncIterator in outcome) return writeFrames(outcome, socket, streams.get(socket)!, id);
    return { result: outcome, json: () => JSON.stringify(outcome) } as unknown as ExecutionResult;
  }

  return {
    async close() {
      server.off('upgrade', onUpgrade);
      for (const client of wss.clients)
        client.close(1001, 'going away: reconnect and resume from your last cursor');
      await graphqlWs.dispose();
    },
  };
}
