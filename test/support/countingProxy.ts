// A proxy in front of the platform's subgraphs that counts every request and WebSocket upgrade, so that
// a test can state "no subgraph was called" as a number.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../../lib/service.ts';

/** The running proxy: `urlOf(name)` routes to that subgraph; `calls` counts what reached it. */
export interface CountingProxy {
  calls: number;
  urlOf(subgraph: string): string;
  close(): Promise<void>;
}

/** Forwards /<subgraph>/... to `targets[subgraph]`, counting every request and upgrade (upgrades are refused). */
export async function startCountingProxy(targets: Record<string, string>): Promise<CountingProxy> {
  const server = createServer((request, response) => {
    proxy.calls++;
    const [, name] = request.url?.split('/') ?? [];
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const headers = Object.fromEntries(
        Object.entries(request.headers).filter(
          (entry): entry is [string, string] => typeof entry[1] === 'string' && entry[0] !== 'host',
        ),
      );
      void fetch(targets[name ?? '']!, {
        method: request.method,
        headers,
        body: request.method === 'POST' ? Buffer.concat(chunks) : undefined,
      })
        .then(async (answer) => {
          response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' });
          response.end(Buffer.from(await answer.arrayBuffer()));
        })
        .catch(() => response.writeHead(502).end());
    });
  });
  server.on('upgrade', (_request, socket: { destroy(): void }) => {
    proxy.calls++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const proxy: CountingProxy = {
    calls: 0,
    urlOf: (subgraph) => `${base}/${subgraph}`,
    close: () => closeServer(server),
  };
  return proxy;
}
