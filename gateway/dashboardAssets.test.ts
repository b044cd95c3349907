// The dashboard's static files: what is served, with which headers, and that nothing outside the build is.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { closeServer } from '../lib/service.ts';
import { createDashboardAssets, isDashboardPath, pageSecurityPolicy } from './dashboardAssets.ts';
import { createHttpSecurity } from './httpSecurity.ts';

let root: string;
let server: Server;
let base: string;

/**
 * Starts the handler the way the gateway mounts it: behind the security headers, for dashboard paths
 * (or, with `everything`, for every path: the handler must refuse what the routing would not send it).
 */
async function serve(dir: string, everything = false): Promise<{ server: Server; base: string }> {
  const secure = createHttpSecurity({ corsOrigins: [], production: false });
  const dashboard = createDashboardAssets({ dir, logger: createLogger('test', 'silent') });
  const started = createServer((req, res) => {
    if (secure(req, res)) return;
    if (everything || isDashboardPath(req.url?.split('?')[0])) dashboard(req, res);
    else res.writeHead(418).end();
  });
  await new Promise<void>((resolve) => started.listen(0, '127.0.0.1', resolve));
  return { server: started, base: `http://127.0.0.1:${(started.address() as AddressInfo).port}` };
}

/** A request with the path exactly as given (fetch would normalise dot segments away). */
function rawGet(origin: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(origin, { path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pulsegraph-dashboard-assets-'));
  const dist = join(root, 'dist');
  await mkdir(join(dist, 'assets'), { recursive: true });
  await writeFile(join(dist, 'index.html'), '<!doctype html><title>Pulsegraph</title>');
  await writeFile(join(dist, 'assets', 'index-Ab12_x.js'), 'console.log(1);');
  await writeFile(join(dist, 'assets', 'index-Cd34.css'), 'body{}');
  await writeFile(join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(join(root, 'secret.txt'), 'not for the web');
  await writeFile(join(dist, 'assets', '.env'), 'SECRET=1');
  ({ server, base } = await serve(dist));
});

afterAll(async () => {
  await closeServer(server);
  await rm(root, { recursive: true, force: true });
});

describe('dashboard assets', () => {
  it('serves the page with a CSP that lets its own scripts, styles and WebSocket run, revalidated each time', async () => {
    const response = await fetch(`${base}/?token=abc`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const host = new URL(base).host;
    expect(response.headers.get('content-security-policy')).toBe(
      `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; ` +
        `connect-src 'self' ws://${host} wss://${host}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    // The gateway's other headers still hold.
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await response.text()).toContain('<title>Pulsegraph</title>');
    expect((await fetch(`${base}/index.html`)).status).toBe(200);
  });

  it('serves hashed assets with their content type, cached for a year, and HEAD without a body', async () => {
    const script = await fetch(`${base}/assets/index-Ab12_x.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    // Only the page gets the page's policy; a file opened directly stays under default-src 'none'.
    expect(script.headers.get('content-security-policy')).toContain("default-src 'none'; frame-ancestors");
    expect(await script.text()).toBe('console.log(1);');
    const style = await fetch(`${base}/assets/index-Cd34.css`, { method: 'HEAD' });
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(style.headers.get('content-length')).toBe('6');
    expect(await style.text()).toBe('');
    const icon = await fetch(`${base}/favicon.svg`);
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    expect(icon.headers.get('cache-control')).toBe('no-cache');
  });

  it('answers 404 for missing assets and 405 for other methods', async () => {
    expect((await fetch(`${base}/assets/index-missing.js`)).status).toBe(404);
    const post = await fetch(`${base}/`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('serves nothing outside the build: dot segments, encoded slashes, hidden files and subfolders', async () => {
    const unrouted = await serve(join(root, 'dist'), true);
    for (const path of [
      '/assets/../../secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e/secret.txt',
      '/assets/.env',
      '/assets/../index.html',
      '/assets/sub/index-Ab12_x.js',
      '/../secret.txt',
      '/secret.txt',
    ]) {
      expect(isDashboardPath(path), path).toBe(false);
      expect((await rawGet(base, path)).status, path).toBe(418);
      const { status, body } = await rawGet(unrouted.base, path);
      expect(status, path).toBe(404);
      expect(body).not.toContain('not for the web');
      expect(body).not.toContain('SECRET');
    }
    await closeServer(unrouted.server);
  });

  it('says how to build the page when the build is missing', async () => {
    const empty = await serve(join(root, 'nothing-here'));
    try {
      const response = await fetch(`${empty.base}/`);
      expect(response.status).toBe(404);
      expect(await response.text()).toContain('npx vite build dashboard');
    } finally {
      await closeServer(empty.server);
    }
  });

  it('puts only a well-formed Host into the policy', () => {
    expect(pageSecurityPolicy('127.0.0.1:4000')).toContain(
      "connect-src 'self' ws://127.0.0.1:4000 wss://127.0.0.1:4000;",
    );
    expect(pageSecurityPolicy('[::1]:4000')).toContain('ws://[::1]:4000');
    expect(pageSecurityPolicy("evil.example; script-src 'unsafe-inline'")).toContain("connect-src 'self';");
    expect(pageSecurityPolicy(undefined)).toContain("connect-src 'self';");
  });
});
