// The CPU floor of a Node gateway on the bench query: a hand-written gateway for that one query, with no
// planning, validation or merging. Per request it reads and parses the body, sends the subgraph operations
// the reference peer sent for it (recorded, replayed all at once over a keep-alive undici pool), reads and
// parses every answer, and writes the answer with JSON.stringify. What it does, every gateway must do.
// It sends through the same lean undici exchange as our gateway (postText), so the floor is no higher
// than what our gateway pays for the same HTTP work.
// Env: BENCH_FLOOR (JSON file: { fetches: [{ url, body }], answer }), BENCH_PORT. Prints "listening <port>".
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Agent } from 'undici';
import { postText } from '../../../gateway/execution/subgraphHttp.ts';
import { readBody } from '../readBody.ts';

interface Recording {
  fetches: Array<{ url: string; body: string }>;
  /** The answer to the bench query, as the reference peer wrote it. */
  answer: string;
}

const recording = JSON.parse(readFileSync(process.env['BENCH_FLOOR']!, 'utf8')) as Recording;
const answer = JSON.parse(recording.answer) as unknown;
const agent = new Agent({ keepAliveTimeout: 30_000, connections: 128, pipelining: 1 });

async function send(url: string, body: string, authorization: string | undefined): Promise<unknown> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (authorization) headers['authorization'] = authorization;
  return JSON.parse((await postText(agent, url, headers, body, 10_000)).text) as unknown;
}

const server = createServer((req, res) => {
  void readBody(req).then(async (text) => {
    const { query } = JSON.parse(text) as { query?: string };
    if (!query?.includes('TestQuery')) {
      // The readiness probe ({ __typename }).
      res.setHeader('content-type', 'application/json');
      res.end('{"data":{"__typename":"Query"}}');
      return;
    }
    const answers = await Promise.all(
      recording.fetches.map(({ url, body }) => send(url, body, req.headers.authorization)),
    );
    if (answers.some((a) => a == null || typeof a !== 'object')) res.statusCode = 502;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(answer));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env['BENCH_PORT']), '127.0.0.1', () =>
  console.log(`listening ${process.env['BENCH_PORT']}`),
);
