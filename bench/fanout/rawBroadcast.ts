// The fan-out baseline: a bare `ws` server that sends each line it reads on stdin, serialized once, to
// every connected client. A new client first gets the latest line (as gateway subscribers get a
// snapshot), so the bench knows it is connected. Prints `listening <port>`; exits when stdin ends.
import { createInterface } from 'node:readline';
import { WebSocketServer } from 'ws';

const HELLO = '{"id":"1","type":"next","payload":{"data":{"kpiUpdated":{"value":-1}}}}';

let latest = Buffer.from(HELLO);
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (ws) => ws.send(latest, { binary: false }));
wss.on('listening', () => {
  const address = wss.address();
  console.log(`listening ${typeof address === 'string' ? address : address?.port}`);
});

for await (const line of createInterface({ input: process.stdin })) {
  latest = Buffer.from(line);
  for (const client of wss.clients) client.send(latest, { binary: false });
}
for (const client of wss.clients) client.terminate();
wss.close();
