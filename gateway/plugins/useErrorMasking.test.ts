// Production error masking: what a subgraph leaks in an unexpected error never reaches the client; the
// client gets the request's id, and the log line with the real error carries the same id.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenVerifier } from '../../lib/auth.ts';
import { createGateway, type Gateway } from '../gateway.ts';

const LEAK = 'connection to db-7.internal:5432 failed: password authentication failed for user "app"';

let subgraph: Server;
const logged: Array<Record<string, unknown>> = [];

const verifier: TokenVerifier = {
  verify: () => Promise.resolve({ tenant: 'acme', subject: 'u', roles: ['admin'], scopes: [] }),
};

function gatewayOver(production: boolean): Gateway {
  const url = `http://127.0.0.1:${(subgraph.address() as AddressInfo).port}/graphql`;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return createGateway({
    supergraphSdl: readFileSync('supergraph.graphql', 'utf8'),
    subgraphUrls: { metadata: url, metrics: url, reports: url, insights: url },
    verifier,
    logger: pino({ level: 'error' }, sink),
    production,
    allowAnonymousIntrospection: false,
    subgraphTimeoutMs: 2_000,
  });
}

async function ask(gateway: Gateway) {
  const response = await gateway.yoga.fetch('http://gateway/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer t', 'x-request-id': 'req-1234' },
    body: JSON.stringify({ query: '{ kpis { code } }' }),
  });
  return (await response.json()) as {
    errors: Array<{ message: string; extensions: Record<string, unknown> }>;
  };
}

beforeAll(async () => {
  // A subgraph that fails with an error carrying no code and a message it should never have written.
  subgraph = createServer((_request, response) => {
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ data: null, errors: [{ message: LEAK, path: ['kpis'] }] }));
  });
  await new Promise<void>((resolve) => subgraph.listen(0, '127.0.0.1', resolve));
});
afterAll(() => new Promise((resolve) => subgraph.close(resolve)));

describe('error masking', () => {
  it('in production, answers "Unexpected error." with the request id, and logs the real error under it', async () => {
    const gateway = gatewayOver(true);
    try {
      const { errors } = await ask(gateway);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({
        message: 'Unexpected error.',
        extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'req-1234' },
      });
      expect(JSON.stringify(errors)).not.toContain('db-7');
      const line = logged.find((entry) => entry['requestId'] === 'req-1234');
      expect(JSON.stringify(line)).toContain('password authentication failed');
    } finally {
      await gateway.close();
    }
  });

  it('in development, shows the subgraph error as it is', async () => {
    const gateway = gatewayOver(false);
    try {
      const { errors } = await ask(gateway);
      expect(errors[0]!.message).toBe(LEAK);
    } finally {
      await gateway.close();
    }
  });
});
