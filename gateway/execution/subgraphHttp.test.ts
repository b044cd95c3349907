import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { postText } from './subgraphHttp.ts';

const servers: Server[] = [];
const agents: Agent[] = [];

afterEach(async () => {
  await Promise.all(agents.splice(0).map((agent) => agent.destroy()));
  for (const server of servers.splice(0)) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
});

async function serve(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

function agent(options: ConstructorParameters<typeof Agent>[0] = {}): Agent {
  const created = new Agent(options);
  agents.push(created);
  return created;
}

describe('one POST to a subgraph (postText)', () => {
  it('sends the body and headers and reads an answer written in several chunks, whatever its status', async () => {
    const seen: Array<{ path?: string; type?: string; body: string }> = [];
    const url = await serve((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen.push({ path: req.url, type: req.headers['content-type'], body });
        res.writeHead(req.headers['x-fail'] ? 502 : 200, { 'content-type': 'application/json' });
        // Three writes a turn apart, so the answer arrives in separate chunks; "é" is split across two.
        const text = Buffer.from('{"data":{"name":"café","n":1}}');
        res.write(text.subarray(0, 23));
        setTimeout(() => res.write(text.subarray(23, 26)), 5);
        setTimeout(() => res.end(text.subarray(26)), 10);
      });
    });
    const dispatcher = agent();
    const headers = { 'content-type': 'application/json' };
    const ok = await postText(dispatcher, `${url}?x=1`, headers, '{"query":"{n}"}', 2_000);
    expect(ok).toEqual({ status: 200, text: '{"data":{"name":"café","n":1}}' });
    expect(seen[0]).toEqual({ path: '/graphql?x=1', type: 'application/json', body: '{"query":"{n}"}' });
    const failed = await postText(dispatcher, url, { ...headers, 'x-fail': '1' }, '{}', 2_000);
    expect(failed.status).toBe(502);
  });

  it('reads answers of many chunks, larger than the buffer they are joined in and then smaller, each exactly', async () => {
    // Answer n: a JSON string of n KiB of "é" (two bytes each) and ASCII, written 1000 bytes at a time so
    // that characters split across chunks.
    const answerOf = (kib: number) => JSON.stringify({ data: { text: 'é-'.repeat(kib * 341) } });
    const url = await serve((req, res) => {
      const body = Buffer.from(answerOf(Number(req.headers['x-kib'])));
      res.writeHead(200, { 'content-type': 'application/json' });
      let at = 0;
      const next = (): void => {
        if (at >= body.length) return void res.end();
        res.write(body.subarray(at, (at += 1000)));
        setImmediate(next);
      };
      next();
    });
    const dispatcher = agent();
    const ask = (kib: number) =>
      postText(dispatcher, url, { 'x-kib': String(kib) }, '{}', 10_000).then((answer) => answer.text);
    for (const kib of [700, 40, 300, 3]) expect(await ask(kib)).toBe(answerOf(kib));
    const sizes = [500, 2, 90, 260, 33, 1200];
    expect(await Promise.all(sizes.map(ask))).toEqual(sizes.map(answerOf));
  });

  it('fails with a TimeoutError when the whole exchange outlasts the deadline, even while data trickles in', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // A byte every 50 ms: neither the headers nor the body timeout fires, only the whole deadline.
      const drip = setInterval(() => res.write(' '), 50);
      res.on('close', () => clearInterval(drip));
    });
    const started = performance.now();
    const failure = await postText(agent(), url, {}, '{}', 300).catch((error: unknown) => error);
    expect((failure as Error).name).toBe('TimeoutError');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('fails at the deadline while the request still waits for a connection, and aborts it once it starts', async () => {
    let received = 0;
    const release: Array<() => void> = [];
    const url = await serve((req, res) => {
      received += 1;
      req.resume();
      release.push(() => res.end('{"data":{}}'));
    });
    // One connection: the second request queues behind the first, which the server holds.
    const dispatcher = agent({ connections: 1 });
    const first = postText(dispatcher, url, {}, '{}', 5_000);
    await expect.poll(() => received).toBe(1);
    const queued = await postText(dispatcher, url, {}, '{}', 200).catch((error: unknown) => error);
    expect((queued as Error).name).toBe('TimeoutError');
    release.shift()!();
    expect((await first).status).toBe(200);
    // The expired request was aborted when it got the connection, so the server never answers it.
    await new Promise((settled) => setTimeout(settled, 200));
    expect(received).toBe(1);
  });

  it('fails, and stops reading, once an answer outgrows the limit', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // 64 KiB chunks for as long as the socket stays open: far more than the 1 MiB limit below.
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const failure = await postText(agent(), url, {}, '{}', 5_000, 2 ** 20).catch((error: unknown) => error);
    expect((failure as Error).message).toBe(`answered more than ${2 ** 20} bytes`);
  });

  it('fails with the connection error when nothing listens', async () => {
    const url = await serve((_req, res) => res.end());
    servers[0]!.close();
    await new Promise((closed) => setTimeout(closed, 50));
    const failure = await postText(agent(), url, {}, '{}', 2_000).catch((error: unknown) => error);
    expect((failure as { code?: string }).code).toBe('ECONNREFUSED');
  });
});
