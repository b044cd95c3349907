import { createConnection, createServer } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (listen on port 0, note it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() =>
        port ? resolve(port) : reject(new Error('could not read the port of a free socket')),
      );
    });
  });
}

/** True when nothing listens on 127.0.0.1:port and we could bind it. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Connects to 127.0.0.1:port, optionally sends a request, and returns the first line the server sends back;
 * undefined when nothing answers within timeoutMs (a readiness probe, so failures are not errors).
 */
export function readFirstLine(port: number, request?: string, timeoutMs = 1000): Promise<string | undefined> {
  return new Promise((resolve) => {
    let received = '';
    const socket = createConnection({ host: '127.0.0.1', port });
    const finish = (line: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(line);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.once('connect', () => {
      if (request !== undefined) socket.write(request);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      const end = received.indexOf('\r\n');
      if (end >= 0) finish(received.slice(0, end));
    });
    socket.once('error', () => finish(undefined));
    socket.once('close', () => finish(undefined));
  });
}

/** Polls check every intervalMs until it returns true; false when timeoutMs passes or stop() says so. */
export async function pollUntil(
  check: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; stop?: () => boolean },
): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (options.stop?.()) return false;
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}

/** True when GET url answers 200 within a second. */
export async function answers200(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}
