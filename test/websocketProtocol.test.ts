// The graphql-transport-ws protocol at the gateway, frame by frame over a raw socket: the close codes
// of graphql-ws's PROTOCOL.md, ping/pong, keepalive, errors that end one operation but keep the socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { signDevToken } from '../lib/devKeys.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { gatewayMetric } from './support/subscribers.ts';

let platform: TestPlatform;
let viewer: string;

interface Frame {
  id?: string;
  type: string;
  payload?: unknown;
}

/** A raw graphql-transport-ws socket: what it received, and how it closed. */
async function open(protocol = 'graphql-transport-ws', options: WebSocket.ClientOptions = {}) {
  const url = platform.gatewayUrl.replace(/^http/, 'ws');
  const socket = protocol ? new WebSocket(url, protocol, options) : new WebSocket(url, options);
  const frames: Frame[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  socket.on('message', (raw: Buffer) => frames.push(JSON.parse(raw.toString()) as Frame));
  // When the server pinged it (listened for from the start: a ping may come with the handshake's answer).
  const pings: number[] = [];
  socket.on('ping', () => pings.push(Date.now()));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const send = (frame: Frame | string) =>
    socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  const frame = async (type: string, id?: string) => {
    await expect
      .poll(() => frames.some((f) => f.type === type && (id === undefined || f.id === id)))
      .toBe(true);
    return frames.find((f) => f.type === type && (id === undefined || f.id === id))!;
  };
  const init = async (token = viewer) => {
    send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
    await frame('connection_ack');
  };
  return { socket, frames, closed, send, frame, init, pings };
}

const KPI = { query: 'subscription { kpiUpdated(codes: ["orders"]) { value } }' };

const KEEPALIVE_MS = 2_000;

beforeAll(async () => {
  platform = await startTestPlatform({ env: { WS_KEEPALIVE_MS: String(KEEPALIVE_MS) } });
  viewer = await platform.token('acme', ['viewer']);
}, 60_000);
afterAll(() => platform?.stop());

describe('graphql-ws close codes', () => {
  it('4406 without the graphql-transport-ws subprotocol', async () => {
    expect((await (await open('')).closed).code).toBe(4406);
  });

  it('4408 without connection_init in time', async () => {
    expect((await (await open()).closed).code).toBe(4408);
  }, 10_000);

  it('4403 for a missing or invalid token, and when the token expires', async () => {
    const none = await open();
    none.send({ type: 'connection_init' });
    expect((await none.closed).code).toBe(4403);
    const forged = await open();
    forged.send({ type: 'connection_init', payload: { authorization: 'Bearer forged' } });
    expect((await forged.closed).code).toBe(4403);
    const shortLived = await open();
    await shortLived.init(
      await signDevToken(platform.dataDir, { tenant: 'acme', roles: ['viewer'], expiresIn: '2s' }),
    );
    const { code, reason } = await shortLived.closed;
    expect([code, reason]).toEqual([4403, 'Forbidden: token expired']);
  });

  it('4401 for subscribe before the ack, 4429 for a second init, 4409 for a reused id, 4400 for junk', async () => {
    const early = await open();
    early.send({ id: '1', type: 'subscribe', payload: KPI });
    expect((await early.closed).code).toBe(4401);
    const twice = await open();
    await twice.init();
    twice.send({ type: 'connection_init' });
    expect((await twice.closed).code).toBe(4429);
    const duplicate = await open();
    await duplicate.init();
    duplicate.send({ id: 'a', type: 'subscribe', payload: KPI });
    duplicate.send({ id: 'a', type: 'subscribe', payload: KPI });
    expect((await duplicate.closed).code).toBe(4409);
    const junk = await open();
    await junk.init();
    junk.send('{"not":"a protocol message"}');
    expect((await junk.closed).code).toBe(4400);
  });
});

describe('keepalive (WS_KEEPALIVE_MS)', () => {
  it('pings every socket, keeps one that answers, and terminates one that stops answering', async () => {
    const answering = await open();
    const silent = await open('graphql-transport-ws', { autoPong: false });
    await answering.init();
    await silent.init();
    // Terminated, not closed: no close frame reaches the client (1006), a whole interval after the ping it
    // left unanswered.
    expect((await silent.closed).code).toBe(1006);
    expect(silent.pings).toHaveLength(1);
    expect(Date.now() - silent.pings[0]!).toBeGreaterThanOrEqual(KEEPALIVE_MS - 50);
    expect(answering.pings.length).toBeGreaterThanOrEqual(1);
    expect(answering.socket.readyState).toBe(WebSocket.OPEN);
    answering.socket.close();
  }, 20_000);

  it('spreads the pings of sockets opened together over the interval', async () => {
    const sockets = await Promise.all(Array.from({ length: 20 }, () => open()));
    await expect.poll(() => sockets.every(({ pings }) => pings.length > 0), { timeout: 5_000 }).toBe(true);
    const firstPings = sockets.map(({ pings }) => pings[0]!);
    for (const { socket } of sockets) socket.close();
    // Pinged on the interval from the moment they opened, all 20 would be pinged within a few ms.
    expect(Math.max(...firstPings) - Math.min(...firstPings)).toBeGreaterThan(KEEPALIVE_MS / 4);
  }, 20_000);
});

describe('graphql-ws operations', () => {
  it('answers ping with pong and its payload', async () => {
    const client = await open();
    await client.init();
    client.send({ type: 'ping', payload: { at: 1 } });
    expect(await client.frame('pong')).toEqual({ type: 'pong', payload: { at: 1 } });
    client.socket.close();
  });

  it('refuses an invalid operation with an error message and keeps the socket for the next', async () => {
    const client = await open();
    await client.init();
    client.send({ id: 'bad', type: 'subscribe', payload: { query: 'subscription { nope }' } });
    const error = await client.frame('error', 'bad');
    expect(error.payload).toMatchObject([{ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }]);
    client.send({ id: 'q', type: 'subscribe', payload: { query: '{ kpis { code } }' } });
    expect((await client.frame('next', 'q')).payload).toEqual({ data: { kpis: [] } });
    await client.frame('complete', 'q');
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    client.socket.close();
  });

  it('sends nothing after the client completes, and frees the subscription', async () => {
    const client = await open();
    await client.init();
    client.send({ id: 's', type: 'subscribe', payload: KPI });
    await expect.poll(() => active()).toBe(1);
    client.send({ id: 's', type: 'complete' });
    await expect.poll(() => active()).toBe(0);
    client.socket.close();
  });

  it('closes every subscription of a dropped socket', async () => {
    const client = await open();
    await client.init();
    for (const id of ['1', '2', '3']) client.send({ id, type: 'subscribe', payload: KPI });
    await expect.poll(() => active()).toBe(3);
    client.socket.terminate();
    await expect.poll(() => active()).toBe(0);
  });
});

const active = () => gatewayMetric(platform.gatewayUrl, 'pulsegraph_subscriptions_active{transport="ws"}');
