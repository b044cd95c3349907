// Machine calibration: what a bare node:http server answers per second on one core, so figures taken on
// different machines can be compared. The server runs on core 0; this process drives it with pipelined
// keep-alive requests, which costs the client far less than the server, so the server is the bottleneck.
import { createConnection, type Socket } from 'node:net';
import { once } from 'node:events';
import { outputTail, spawnTied, stopChild } from '../scripts/childProcesses.ts';
import { onCore } from './cores.ts';

const SERVER = `require('node:http').createServer((req, res) => res.end('ok'))
  .listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
const REQUEST = 'GET / HTTP/1.1\r\nHost: calibrate\r\n\r\n';
const END_OF_RESPONSE = '\r\n\r\nok';
const CONNECTIONS = 8;
const PIPELINE = 32;

/** Requests per second a bare node:http server answers on core 0 (unpinned without taskset). */
export async function calibrateHttp(durationMs = 3_000): Promise<number> {
  const [command, args] = onCore(0, process.execPath, ['-e', SERVER]);
  const server = spawnTied(command, args);
  const tail = outputTail(server);
  try {
    const [line] = (await Promise.race([
      once(server.stdout!, 'data'),
      once(server, 'exit').then(() => Promise.reject(new Error(`calibration server exited: ${tail()}`))),
    ])) as [Buffer];
    const port = Number(line.toString().trim());
    let answered = 0;
    let counting = false;
    const sockets: Socket[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      let carry = '';
      socket.on('data', (chunk: Buffer) => {
        const text = carry + chunk.toString('latin1');
        let done = 0;
        for (let at = text.indexOf(END_OF_RESPONSE); at >= 0; at = text.indexOf(END_OF_RESPONSE, at + 1))
          done++;
        carry = text.slice(-(END_OF_RESPONSE.length - 1));
        if (counting) answered += done;
        if (done && !socket.destroyed) socket.write(REQUEST.repeat(done));
      });
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      socket.write(REQUEST.repeat(PIPELINE));
      sockets.push(socket);
    }
    await new Promise((resolve) => setTimeout(resolve, 500)); // warm-up, not counted
    counting = true;
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, durationMs));
    const rate = answered / ((performance.now() - started) / 1000);
    for (const socket of sockets) socket.destroy();
    return rate;
  } finally {
    await stopChild(server);
  }
}
