// The built dashboard (DASHBOARD_DIR, written by `vite build`) at / and /assets/*: files from that
// directory only, with their content type, a page CSP that lets it run, and long caching for the
// content-hashed assets.
import { open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../lib/logger.ts';

/** What the dashboard files are served as. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

// One path segment of plain characters, not starting with a dot: nothing can climb out of assets/.
const ASSET_PATH = /^\/assets\/([A-Za-z0-9_-][A-Za-z0-9_.-]*)$/;
/** Files of the build's root that the page links to (index.html's icon). */
const ROOT_FILES = new Set(['/favicon.svg']);

/** Whether a request path belongs to the dashboard. */
export function isDashboardPath(path: string | undefined): boolean {
  return (
    path === '/' ||
    path === '/index.html' ||
    (path !== undefined && (ROOT_FILES.has(path) || ASSET_PATH.test(path)))
  );
}

/**
 * The page's Content-Security-Policy: its own scripts and styles only, no inline code; connections to
 * its own origin, WebSockets included (spelled out for browsers whose 'self' does not cover ws:).
 */
export function pageSecurityPolicy(host: string | undefined): string {
  const sameHost = host && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host);
  const sockets = sameHost ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    // uPlot draws on canvas; data: covers images a stylesheet may inline.
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The file a dashboard path names, inside dir; undefined for anything else. */
function fileOf(dir: string, path: string): string | undefined {
  if (path === '/' || path === '/index.html') return join(dir, 'index.html');
  if (ROOT_FILES.has(path)) return join(dir, path.slice(1));
  const asset = ASSET_PATH.exec(path)?.[1];
  return asset ? join(dir, 'assets', asset) : undefined;
}

/** Options of the dashboard's static files. */
export interface DashboardAssetsOptions {
  /** The build output (DASHBOARD_DIR), absolute or relative to the working directory. */
  dir: string;
  logger: Logger;
}

/** Builds the handler for isDashboardPath requests: GET and HEAD, from options.dir only. */
export function createDashboardAssets(
  options: DashboardAssetsOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const dir = resolve(options.dir);

  const answer = (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) =>
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(text);

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      answer(res, 405, `expected GET or HEAD, but got ${req.method}\n`, { allow: 'GET, HEAD' });
      return;
    }
    const path = req.url?.split('?')[0] ?? '';
    const file = fileOf(dir, path);
    const page = path === '/' || path === '/index.html';
    let handle: FileHandle | undefined;
    try {
      handle = file ? await open(file, 'r') : undefined;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EISDIR') throw error;
    }
    if (!handle) {
      answer(
        res,
        404,
        page
          ? `The dashboard is not built in ${dir}: npm start builds it, or run npx vite build dashboard\n`
          : `no dashboard file at ${path}\n`,
      );
      return;
    }
    try {
      const { size } = await handle.stat();
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[extname(file!)] ?? 'application/octet-stream',
        'content-length': String(size),
        // Asset names carry a hash of their content: a changed file is a new name.
        'cache-control': path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        ...(page ? { 'content-security-policy': pageSecurityPolicy(req.headers.host) } : {}),
      });
      if (req.method === 'HEAD') res.end();
      else await pipeline(handle.createReadStream({ autoClose: false }), res);
    } finally {
      await handle.close();
    }
  }

  return (req, res) => {
    serve(req, res).catch((error: unknown) => {
      // A client that goes away mid-file is not an error of ours.
      if (res.destroyed) return;
      options.logger.error(
        { err: error, path: req.url?.split('?')[0] },
        'dashboard file could not be served',
      );
      if (res.headersSent) res.destroy();
      else answer(res, 500, 'internal error\n');
    });
  };
}
