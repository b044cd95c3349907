// What every HTTP answer of the gateway carries, whatever endpoint serves it: security headers, a
// request id, and the CORS policy of the configured allow-list (the only CORS code: yoga's is off).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Headers of every response: an API answers JSON, so nothing may sniff, frame, or run it. */
const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-store',
};

// Behind TLS in production, browsers are told to stay on HTTPS (ignored by them over plain HTTP).
const HSTS = 'max-age=31536000; includeSubDomains';

/** Request headers a browser client may send cross-origin. */
const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'accept',
  'x-request-id',
  'last-event-id',
  'x-graphql-csrf',
  'apollo-require-preflight',
  'x-apollo-operation-name',
].join(', ');

/** Response headers a cross-origin client may read. */
const EXPOSED_HEADERS = 'retry-after, x-request-id, content-disposition';

/** Options of the gateway's HTTP security. */
export interface HttpSecurityOptions {
  /** Origins allowed to call cross-origin (exact `scheme://host[:port]`; `*` allows any). */
  corsOrigins: readonly string[];
  production: boolean;
}

/**
 * Prepares a request and its response: sets the security headers and `x-request-id` (the caller's, or
 * a new one, also written into the request so logs and subgraphs share it), applies CORS, and answers a
 * preflight itself. Returns true when the request was answered here.
 */
export function createHttpSecurity(options: HttpSecurityOptions) {
  const anyOrigin = options.corsOrigins.includes('*');
  const allowed = new Set(options.corsOrigins);
  const isAllowed = (origin: string) => anyOrigin || allowed.has(origin);

  return function secure(req: IncomingMessage, res: ServerResponse): boolean {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    if (options.production) res.setHeader('strict-transport-security', HSTS);
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    req.headers['x-request-id'] = requestId;
    res.setHeader('x-request-id', requestId);

    const origin = req.headers.origin;
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (origin === undefined) return false;
    res.setHeader('vary', 'Origin');
    if (!isAllowed(origin)) {
      // No CORS headers: the browser keeps the answer from the page. A preflight is refused outright.
      if (!preflight) return false;
      res.writeHead(403, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          errors: [
            { message: `origin ${origin} is not allowed (CORS_ORIGINS)`, extensions: { code: 'FORBIDDEN' } },
          ],
        }),
      );
      return true;
    }
    res.setHeader('access-control-allow-origin', anyOrigin ? '*' : origin);
    res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
    if (!preflight) return false;
    res
      .writeHead(204, {
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': ALLOWED_HEADERS,
        'access-control-max-age': '600',
      })
      .end();
    return true;
  };
}

/**
 * Whether a WebSocket upgrade from this origin may proceed: browsers send their page's origin and do
 * not apply CORS to WebSockets, so the allow-list is checked here (non-browser clients send none).
 */
export function webSocketOriginAllowed(req: IncomingMessage, corsOrigins: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || corsOrigins.includes('*') || corsOrigins.includes(origin)) return true;
  // A page served by the gateway itself (the dashboard) is same-origin.
  return origin === `http://${req.headers.host}` || origin === `https://${req.headers.host}`;
}
