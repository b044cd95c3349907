// A gateway built in a test (createGateway) served over real HTTP, SSE and graphql-ws on a free port.
import type { AddressInfo } from 'node:net';
import type { Gateway } from '../../gateway/gateway.ts';
import { createSseHandler, wantsEventStream } from '../../gateway/transports/sse.ts';
import { attachWebSocket } from '../../gateway/transports/websocket.ts';
import type { TokenVerifier } from '../../lib/auth.ts';
import { loadConfig } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import { closeServer, listen } from '../../lib/service.ts';

const defaults = loadConfig({ AUTH_MODE: 'dev' });

/** Serves `gateway` on 127.0.0.1; `url` is its /graphql; `close` stops the server, not the gateway. */
export async function serveGateway(gateway: Gateway, verifier: TokenVerifier, logger: Logger) {
  const sse = createSseHandler({ gateway, verifier, logger, maxBodyBytes: 1_048_576 });
  const server = await listen(
    (request, response) => {
      if (wantsEventStream(request)) void sse(request, response);
      else void gateway.yoga(request, response, { req: request, res: response });
    },
    0,
    '127.0.0.1',
  );
  const websocket = attachWebSocket(server, {
    gateway,
    verifier,
    logger,
    connectionInitTimeoutMs: 3_000,
    maxMessageBytes: 262_144,
    // As the gateway runs by default (lib/config.ts).
    keepAliveMs: defaults.WS_KEEPALIVE_MS,
    maxSubscriptions: defaults.MAX_SUBSCRIPTIONS_PER_CONNECTION,
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    async close() {
      await websocket.close();
      await closeServer(server);
    },
  };
}
