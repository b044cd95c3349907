// Many minimal graphql-ws (`graphql-transport-ws`) clients over bare `ws` sockets: cheap enough to hold
// 10,000 in one process, where graphql-ws's createClient would cost more than what it measures.
import WebSocket from 'ws';

/** graphql-ws messages a subscriber sends: connection_init once connected, subscribe once acknowledged. */
export interface Handshake {
  init: string;
  subscribe: string;
}

/** Options of openSubscribers. */
export interface SubscriberOptions {
  /** ws:// URL to connect to. */
  url: string;
  count: number;
  /** Sockets opened at a time (each batch is ready before the next starts, so no SYN flood). */
  batch: number;
  /** Without one, a client only listens (the raw baseline). */
  handshake?: Handshake;
  /** Called with each new `next` value and the time it arrived (performance.now(), taken before parsing). */
  onValue(value: number, receivedAt: number): void;
}

/** The open subscribers of one phase. */
export interface Subscribers {
  /** Subscribers that ended before close(), by close code (or "error: ..." from the server). */
  lost: Map<string, number>;
  /** `next` values not above the subscriber's previous one (values only grow): duplicates, reorderings. */
  outOfOrder: number;
  /** The text of the latest `next` message received, to build a baseline frame of the same size. */
  sample: string;
  close(): Promise<void>;
}

type Message = { type: string; payload?: { data?: { kpiUpdated?: { value?: number } } } };

const READY_TIMEOUT_MS = 30_000;

/** Opens `count` subscribers in batches; resolves once each has received its first `next` message. */
export async function openSubscribers(options: SubscriberOptions): Promise<Subscribers> {
  const sockets: WebSocket[] = [];
  let closing = false;
  const subscribers: Subscribers = {
    lost: new Map(),
    outOfOrder: 0,
    sample: '',
    async close() {
      closing = true;
      const open = sockets.filter((ws) => ws.readyState !== WebSocket.CLOSED);
      const closed = open.map((ws) => new Promise((resolve) => ws.once('close', resolve)));
      for (const ws of open) ws.close(1000);
      const timer = setTimeout(() => sockets.forEach((ws) => ws.terminate()), 10_000);
      await Promise.all(closed);
      clearTimeout(timer);
    },
  };
  const lose = (why: string) => {
    if (!closing) subscribers.lost.set(why, (subscribers.lost.get(why) ?? 0) + 1);
  };

  const open = () =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(options.url, 'graphql-transport-ws', { perMessageDeflate: false });
      sockets.push(ws);
      let ready = false;
      let last = -Infinity;
      ws.on('open', () => options.handshake && ws.send(options.handshake.init));
      ws.on('message', (data) => {
        const receivedAt = performance.now();
        const text = (data as Buffer).toString(); // binaryType nodebuffer: always one Buffer
        const message = JSON.parse(text) as Message;
        if (message.type === 'next') {
          subscribers.sample = text;
          const value = message.payload?.data?.kpiUpdated?.value ?? NaN;
          if (value > last) options.onValue((last = value), receivedAt);
          else subscribers.outOfOrder++;
          if (!ready) {
            ready = true;
            resolve();
          }
        } else if (message.type === 'connection_ack') ws.send(options.handshake!.subscribe);
        else if (message.type === 'ping') ws.send('{"type":"pong"}');
        else if (message.type === 'error') {
          lose(`error: ${JSON.stringify(message.payload)}`);
          reject(new Error(`subscription refused: ${text}`));
        }
      });
      ws.on('error', (error) => reject(error));
      ws.on('close', (code, reason) => {
        if (ready) lose(`close ${code} ${String(reason)}`.trim());
        else reject(new Error(`socket closed (${code} ${String(reason)}) before its first value`));
      });
    });

  try {
    for (let opened = 0; opened < options.count; opened += options.batch) {
      const size = Math.min(options.batch, options.count - opened);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`subscribers ${opened}..${opened + size} not ready in time`)),
          READY_TIMEOUT_MS,
        );
      });
      await Promise.race([Promise.all(Array.from({ length: size }, open)), timeout]).finally(() =>
        clearTimeout(timer),
      );
    }
  } catch (error) {
    await subscribers.close();
    throw error;
  }
  return subscribers;
}
