// The fan-out peer: graphql-ws's own server (useServer over `ws`) with graphql-js executing the
// subscription's selection once per subscriber for every value, as a graphql-ws server does by default.
// Each line read on stdin is one KpiValue (JSON) for every subscriber; a new subscriber first gets the
// latest (as gateway subscribers get a snapshot). Prints `listening <port>`; exits when stdin ends.
import { buildSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { EventEmitter, on } from 'node:events';
import { createInterface } from 'node:readline';
import { WebSocketServer } from 'ws';

const schema = buildSchema(`
  type Kpi { code: String! name: String! unit: String! }
  type KpiValue { value: Float! at: String! cursor: String! kpi: Kpi! }
  type Query { ping: Boolean }
  type Subscription { kpiUpdated(codes: [String!]!): KpiValue! }
`);

const bus = new EventEmitter().setMaxListeners(0);
let latest: unknown = { value: -1, at: '', cursor: '', kpi: { code: '', name: '', unit: '' } };

/** A subscriber's source: the latest value, then each new one (listening before the first yield). */
async function* kpiUpdated(): AsyncGenerator<{ kpiUpdated: unknown }> {
  const values = on(bus, 'value');
  yield { kpiUpdated: latest };
  for await (const [value] of values) yield { kpiUpdated: value };
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
useServer({ schema, roots: { subscription: { kpiUpdated } } }, wss);
wss.on('listening', () => {
  const address = wss.address();
  console.log(`listening ${typeof address === 'string' ? address : address?.port}`);
});

for await (const line of createInterface({ input: process.stdin })) {
  latest = JSON.parse(line);
  bus.emit('value', latest);
}
for (const client of wss.clients) client.terminate();
wss.close();
