import { readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';

/** Ports this process has handed out: never handed out twice. */
const handedOut = new Set<number>();

/**
 * Where outgoing connections take their local ports (Linux's ip_local_port_range; 32768 to 60999 unless
 * changed). A port picked inside it can be taken by any client's connection in the moment between the
 * pick and the server's bind, so picks come from the 12,000 ports below it.
 */
function pickRange(): { from: number; to: number } {
  let ephemeralFrom = 32_768;
  try {
    ephemeralFrom = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
  } catch {
    // not Linux: the common default
  }
  return { from: Math.max(1_024, ephemeralFrom - 12_000), to: ephemeralFrom };
}
let range: { from: number; to: number } | undefined;

/** A TCP port on 127.0.0.1 that was free a moment ago and lies outside the ephemeral range when it can. */
export async function freePort(): Promise<number> {
  const { from, to } = (range ??= pickRange());
  for (let attempt = 0; to - from >= 1_000 && attempt < 50; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from));
    if (handedOut.has(port) || !(await isPortFree(port))) continue;
    handedOut.add(port);
    return port;
  }
  return osPickedPort();
}

/** A port the OS picks (listen on port 0, note it, close). */
function osPickedPort(): Promise<number> {
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
