// Operation limits at the gateway (issue #7): depth, aliases, root fields, tokens, nesting, directives and
// cost are refused with HTTP 400 and a code per limit, before any plan, over HTTP, graphql-ws and SSE
// alike. The gateway under test reaches the platform's real subgraphs through a proxy that counts every
// request, so that "no subgraph was called" is a number.
import { readFileSync } from 'node:fs';
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway, type GatewayOptions } from '../gateway/gateway.ts';
import { createTokenVerifier } from '../lib/auth.ts';
import { createLogger } from '../lib/logger.ts';
import type { GraphQLBody } from './support/platform.ts';
import { startCountingProxy, type CountingProxy } from './support/countingProxy.ts';
import { serveGateway } from './support/gatewayServer.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { sseSubscribe, wsClient, wsSubscribe } from './support/subscribers.ts';

interface LimitError {
  message: string;
  extensions: { code: string } & Record<string, unknown>;
}

let platform: TestPlatform;
let admin: string;
let proxy: CountingProxy;
let gateway: Gateway;
let served: { close(): Promise<void> } | undefined;
let gatewayUrl: string;

/** A gateway over the counting proxy (the one under test, or one with other options). */
async function proxiedGateway(options: Partial<GatewayOptions> = {}): Promise<Gateway> {
  return createGateway({
    supergraphSdl: readFileSync('supergraph.graphql', 'utf8'),
    subgraphUrls: Object.fromEntries(
      Object.keys(platform.subgraphUrls).map((name) => [name, proxy.urlOf(name)]),
    ),
    verifier: await createTokenVerifier(platform.config),
    logger: createLogger('gateway', 'silent'),
    production: false,
    allowAnonymousIntrospection: true,
    subgraphTimeoutMs: 5_000,
    ...options,
  });
}

/** POSTs an operation to a gateway's yoga handler directly. */
async function ask(
  target: Gateway,
  query: string,
): Promise<{ status: number; body: { errors?: LimitError[] } }> {
  const response = await target.yoga.fetch('http://gateway/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, body: (await response.json()) as { errors?: LimitError[] } };
}

/** A document of `count` fragments, each spreading the next. */
const fragmentChain = (count: number) =>
  `{ ...F0 } ${Array.from(
    { length: count },
    (_, i) => `fragment F${i} on Query { ${i + 1 < count ? `...F${i + 1}` : 'kpis { code }'} }`,
  ).join(' ')}`;

/** POSTs an operation to the gateway under test, as the admin. */
async function post(
  query: string,
  variables?: Record<string, unknown>,
): Promise<{ status: number; body: GraphQLBody & { errors?: LimitError[] } }> {
  const response = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    body: (await response.json()) as GraphQLBody & { errors?: LimitError[] },
  };
}

const codesOf = (errors: readonly unknown[] | undefined) =>
  (errors ?? []).map((error) => (error as LimitError).extensions.code);

/**
 * A selection `levels` fields deep below a Kpi (or a KpiValue): current { kpi { current ... } } down to
 * a leaf; with `inline`, each level's selection sits in an inline fragment.
 */
function chain(levels: number, onKpi: boolean, inline = false): string {
  if (levels === 1) return onKpi ? 'code' : 'value';
  const inner = chain(levels - 1, !onKpi, inline);
  const field = onKpi ? 'current' : 'kpi';
  return `${field} { ${inline ? `... on ${onKpi ? 'KpiValue' : 'Kpi'} { ${inner} }` : inner} }`;
}

/** A query exactly `depth` fields deep, from kpi(code) down. */
const deepQuery = (depth: number, inline = false) =>
  `{ kpi(code: "checkout.revenue") { ${chain(depth - 1, true, inline)} } }`;

beforeAll(async () => {
  platform = await startTestPlatform();
  admin = await platform.token('acme', ['admin']);
  proxy = await startCountingProxy(platform.subgraphUrls);
  const verifier = await createTokenVerifier(platform.config);
  const logger = createLogger('gateway', 'silent');
  gateway = await proxiedGateway({ verifier, logger });
  const serving = await serveGateway(gateway, verifier, logger);
  served = serving;
  gatewayUrl = serving.url;
  const defined = await post(
    `mutation { defineKpi(input: { code: "checkout.revenue", name: "Revenue", eventName: "checkout.completed", aggregation: COUNT }) { code } }`,
  );
  expect(defined.body.errors).toBeUndefined();
}, 60_000);

afterAll(async () => {
  await served?.close();
  await gateway?.close();
  await proxy?.close();
  await platform?.stop();
});

beforeEach(() => {
  proxy.calls = 0;
});

describe('depth', () => {
  it('serves a query 12 fields deep and refuses one deeper with 400 MAX_DEPTH_EXCEEDED, calling no subgraph', async () => {
    expect(gateway.limits.maxDepth).toBe(12);
    const served = await post(deepQuery(12));
    expect(served.status).toBe(200);
    expect(served.body.errors).toBeUndefined();
    expect(proxy.calls).toBeGreaterThan(0);

    proxy.calls = 0;
    const refused = await post(deepQuery(13));
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toMatchObject([
      {
        message: 'Query depth limit of 12 exceeded, found 13.',
        extensions: { code: 'MAX_DEPTH_EXCEEDED', maxDepth: 12 },
      },
    ]);
    expect(refused.body.data).toBeUndefined();
    expect(proxy.calls).toBe(0);
  });

  it('counts depth through inline and named fragments, which add none of their own', async () => {
    expect((await post(deepQuery(12, true))).status).toBe(200);
    proxy.calls = 0;
    const refusedInline = await post(deepQuery(13, true));
    expect(refusedInline.status).toBe(400);
    expect(codesOf(refusedInline.body.errors)).toEqual(['MAX_DEPTH_EXCEEDED']);

    // The same 13 levels split across named fragments, one of them spread twice.
    const named = `{ kpi(code: "checkout.revenue") { ...Deep current { ...Deeper } } }
      fragment Deep on Kpi { current { kpi { current { ...Deeper } } } }
      fragment Deeper on KpiValue { kpi { current { kpi { current { kpi { current { kpi { current { value } } } } } } } } }`;
    const refusedNamed = await post(named);
    expect(refusedNamed.status).toBe(400);
    expect(refusedNamed.body.errors).toMatchObject([
      { message: 'Query depth limit of 12 exceeded, found 13.', extensions: { code: 'MAX_DEPTH_EXCEEDED' } },
    ]);
    expect(proxy.calls).toBe(0);
  });

  it('refuses a fragment that spreads itself (unbounded depth)', async () => {
    const recursive = `{ kpi(code: "checkout.revenue") { ...Loop } }
      fragment Loop on Kpi { current { kpi { ...Loop } } }`;
    const refused = await post(recursive);
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toMatchObject([
      {
        message: 'fragment Loop spreads itself, so its depth has no bound (the maximum is 12)',
        extensions: { code: 'MAX_DEPTH_EXCEEDED', maxDepth: 12 },
      },
      {
        message: 'Cannot spread fragment "Loop" within itself.',
        extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
      },
    ]);
    expect(proxy.calls).toBe(0);
  });

  it('refuses 500 levels of nesting at parse, before the parser can overflow the stack', async () => {
    for (const query of [
      deepQuery(500),
      `{ kpi(code: ${'['.repeat(2_400)}"x"${']'.repeat(2_400)}) { code } }`,
      `{ kpi(code: "x") { ${'... { '.repeat(2_400)}code${' }'.repeat(2_400)} } }`,
    ]) {
      const refused = await post(query);
      expect(refused.status).toBe(400);
      expect(refused.body.errors).toMatchObject([
        {
          message: 'the document nests brackets more than 256 levels deep, the maximum',
          extensions: { code: 'MAX_DEPTH_EXCEEDED' },
        },
      ]);
    }
    // 200 levels parse, and validation refuses them for their depth.
    const deep = await post(deepQuery(200));
    expect(deep.status).toBe(400);
    expect(codesOf(deep.body.errors)).toEqual(['MAX_DEPTH_EXCEEDED']);
    expect(proxy.calls).toBe(0);
    expect((await post('{ kpis { code } }')).body.data).toEqual({ kpis: [{ code: 'checkout.revenue' }] });
  });

  it('serves a chain of 600 fragments, and refuses a longer one that would overflow the stack with a 400', async () => {
    const served = await post(fragmentChain(600));
    expect(served).toEqual({ status: 200, body: { data: { kpis: [{ code: 'checkout.revenue' }] } } });
    proxy.calls = 0;
    // 5,000 fragments need 40,000 tokens; with a raised limit, graphql-js's recursive rules
    // would overflow the stack, and the gateway refuses the document instead.
    const raised = await proxiedGateway({ limits: { maxTokens: 50_000 } });
    try {
      const refused = await ask(raised, fragmentChain(5_000));
      expect(refused.status).toBe(400);
      expect(refused.body.errors).toMatchObject([
        {
          message: 'the document nests too deeply to be checked',
          extensions: { code: 'MAX_DEPTH_EXCEEDED' },
        },
      ]);
    } finally {
      await raised.close();
    }
    expect(proxy.calls).toBe(0);
  });
});

describe('aliases, root fields, tokens and directives', () => {
  const aliases = (count: number) => Array.from({ length: count }, (_, i) => `a${i}: code`).join(' ');

  it('refuses more than 30 aliases, counted through fragments', async () => {
    expect((await post(`{ kpi(code: "checkout.revenue") { ${aliases(30)} } }`)).status).toBe(200);
    proxy.calls = 0;
    const refused = await post(
      `{ kpi(code: "checkout.revenue") { ...A ...A } } fragment A on Kpi { ${aliases(16)} }`,
    );
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toMatchObject([
      {
        message: 'Aliases limit of 30 exceeded, found 32.',
        extensions: { code: 'MAX_ALIASES_EXCEEDED', maxAliases: 30 },
      },
    ]);
    expect(proxy.calls).toBe(0);
  });

  it('refuses more than 20 root fields, each alias of a field counting as one', async () => {
    const roots = (count: number) =>
      Array.from({ length: count }, (_, i) => `k${i}: kpi(code: "checkout.revenue") { code }`).join(' ');
    // 19 aliases and kpis, selected twice: one response key, one field.
    const served = await post(`{ ${roots(19)} kpis { code } kpis { name } }`);
    expect(served.status).toBe(200);
    expect(served.body.errors).toBeUndefined();
    proxy.calls = 0;
    const refused = await post(
      `{ ${roots(19)} ...Two } fragment Two on Query { kpis { code } again: kpis { name } }`,
    );
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toMatchObject([
      {
        message: 'the operation selects 21 root fields, more than the maximum of 20',
        extensions: { code: 'MAX_ROOT_FIELDS_EXCEEDED', rootFields: 21, maxRootFields: 20 },
      },
    ]);
    expect(proxy.calls).toBe(0);
  });

  it('refuses a document of about 15,000 tokens at parse', async () => {
    const refused = await post(`{ kpis { ${'code '.repeat(15_000)}} }`);
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toMatchObject([
      {
        message: 'the document has more than 5000 tokens, the maximum',
        extensions: { code: 'MAX_TOKENS_EXCEEDED', maxTokens: 5_000 },
      },
    ]);
    expect(proxy.calls).toBe(0);
  });

  it('refuses more than 50 directives', async () => {
    const refused = await post(`{ kpis { ${'code @include(if: true) '.repeat(51)}} }`);
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toMatchObject([
      {
        message: 'Directives limit of 50 exceeded, found 51.',
        extensions: { code: 'MAX_DIRECTIVES_EXCEEDED', maxDirectives: 50 },
      },
    ]);
    expect(proxy.calls).toBe(0);
  });
});

describe('cost', () => {
  it('refuses a list field asked for 10,000 items, with the estimated and the maximum cost', async () => {
    const refused = await post(`{ insights(context: "checkout", limit: 10000) { id kpi { code } } }`);
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toMatchObject([
      {
        message: expect.stringMatching(
          /^the operation's estimated cost is 20000, more than the maximum of 5000 \(a list field costs/,
        ) as unknown,
        extensions: { code: 'MAX_COST_EXCEEDED', cost: 20_000, maxCost: 5_000 },
      },
    ]);
    expect(proxy.calls).toBe(0);
  });

  it('multiplies nested lists, and counts a limit given by a variable once its value is known', async () => {
    // kpis (10 assumed) x insights (default limit 10) x (insight + kpi + current) = 10 x (1 + 10 x 3) = 310.
    const nested = await post(`{ kpis { insights { kpi { current { value } } } } }`);
    expect(nested.status).toBe(200);
    const wide = await post(`{ kpis { insights(limit: 1000) { kpi { code } } } }`);
    expect(wide.body.errors).toMatchObject([{ extensions: { code: 'MAX_COST_EXCEEDED', cost: 20_010 } }]);

    proxy.calls = 0;
    const query = `query ($n: Int) { insights(context: "checkout", limit: $n) { id } }`;
    const refused = await post(query, { n: 10_000 });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toMatchObject([
      { extensions: { code: 'MAX_COST_EXCEEDED', cost: 10_000, maxCost: 5_000 } },
    ]);
    expect(proxy.calls).toBe(0);
    const served = await post(query, { n: 5 });
    expect(codesOf(served.body.errors)).not.toContain('MAX_COST_EXCEEDED');
  });
});

describe('several limits at once', () => {
  it('reports every limit broken, then serves the next valid query', async () => {
    // 23 root fields, 42 aliases, 63 directives, 13 levels and a list of 9,000.
    const roots = Array.from(
      { length: 21 },
      (_, i) =>
        `k${i}: kpi(code: "checkout.revenue") { c: code @include(if: true) code @skip(if: false) name @include(if: true) }`,
    ).join(' ');
    const query = `{ ${roots} ${deepQuery(13).slice(1, -1)} insights(context: "c", limit: 9000) { id } }`;
    const refused = await post(query);
    expect(refused.status).toBe(400);
    expect(codesOf(refused.body.errors).sort()).toEqual([
      'MAX_ALIASES_EXCEEDED',
      'MAX_COST_EXCEEDED',
      'MAX_DEPTH_EXCEEDED',
      'MAX_DIRECTIVES_EXCEEDED',
      'MAX_ROOT_FIELDS_EXCEEDED',
    ]);
    expect(proxy.calls).toBe(0);
    const next = await post('{ kpis { code } }');
    expect(next).toEqual({ status: 200, body: { data: { kpis: [{ code: 'checkout.revenue' }] } } });
  });
});

describe('over graphql-ws and SSE', () => {
  const tooDeep = `subscription { kpiUpdated(codes: ["checkout.revenue"]) { ${chain(12, false)} } }`;

  it('refuses over graphql-ws with the same codes, and keeps the socket for the next operation', async () => {
    const client = wsClient(gatewayUrl, admin);
    try {
      const deep = wsSubscribe(client, tooDeep);
      await expect.poll(() => deep.errors.length).toBeGreaterThan(0);
      expect(deep.errors).toMatchObject([
        {
          message: 'Query depth limit of 12 exceeded, found 13.',
          extensions: { code: 'MAX_DEPTH_EXCEEDED' },
        },
      ]);
      expect(JSON.stringify(deep.errors)).not.toContain('"http"');
      const costly = wsSubscribe(client, `{ insights(context: "c", limit: 10000) { id } }`);
      await expect.poll(() => costly.errors.length).toBeGreaterThan(0);
      expect(costly.errors).toMatchObject([
        { extensions: { code: 'MAX_COST_EXCEEDED', cost: 10_000, maxCost: 5_000 } },
      ]);
      const byVariable = wsSubscribe(client, `query ($n: Int) { insights(context: "c", limit: $n) { id } }`, {
        n: 10_000,
      });
      await expect.poll(() => byVariable.errors.length).toBeGreaterThan(0);
      expect(codesOf(byVariable.errors)).toEqual(['MAX_COST_EXCEEDED']);
      const tokens = wsSubscribe(client, `{ kpis { ${'code '.repeat(15_000)}} }`);
      await expect.poll(() => tokens.errors.length).toBeGreaterThan(0);
      expect(codesOf(tokens.errors)).toEqual(['MAX_TOKENS_EXCEEDED']);
      expect(proxy.calls).toBe(0);
      const next = wsSubscribe<{ kpis: unknown }>(client, '{ kpis { code } }');
      expect(await next.until(1)).toEqual([{ kpis: [{ code: 'checkout.revenue' }] }]);
    } finally {
      await client.dispose();
    }
  });

  it('refuses over SSE with HTTP 400 and the same codes', async () => {
    const deep = sseSubscribe(gatewayUrl, admin, tooDeep);
    expect(await deep.status).toBe(400);
    await expect.poll(() => deep.errors.length).toBeGreaterThan(0);
    expect(codesOf(deep.errors)).toEqual(['MAX_DEPTH_EXCEEDED']);
    const several = sseSubscribe(
      gatewayUrl,
      admin,
      `subscription { kpiUpdated(codes: ["x"]) { ${Array.from({ length: 31 }, (_, i) => `v${i}: value`).join(' ')} } }`,
    );
    expect(await several.status).toBe(400);
    await expect.poll(() => several.errors.length).toBeGreaterThan(0);
    expect(codesOf(several.errors)).toEqual(['MAX_ALIASES_EXCEEDED']);
    const nested = sseSubscribe(gatewayUrl, admin, deepQuery(500).replace('{', 'subscription {'));
    expect(await nested.status).toBe(400);
    expect(proxy.calls).toBe(0);
  });
});

describe('in production', () => {
  let production: Gateway;
  beforeAll(async () => {
    production = await proxiedGateway({ production: true, allowAnonymousIntrospection: false });
  });
  afterAll(() => production?.close());

  it('suggests no field names for an unknown field (development does)', async () => {
    const unknown = '{ kpiz { code } }';
    const development = await post(unknown);
    expect(development.body.errors?.[0]?.message).toMatch(/Did you mean "kpi"/);
    const { body } = await ask(production, unknown);
    expect(body.errors).toMatchObject([
      {
        message: 'Cannot query field "kpiz" on type "Query".',
        extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
      },
    ]);
    expect(proxy.calls).toBe(0);
  });

  it('refuses introspection (INTROSPECTION_DISABLED), and limits its depth when it is enabled', async () => {
    expect((await post(getIntrospectionQuery())).status).toBe(200);
    const disabled = await ask(production, '{ __schema { queryType { name } } }');
    expect(disabled.status).toBe(400);
    expect(codesOf(disabled.body.errors)).toEqual(['INTROSPECTION_DISABLED']);
    expect((await ask(production, '{ __typename }')).body).toEqual({ data: { __typename: 'Query' } });
    const enabled = await proxiedGateway({
      production: true,
      allowAnonymousIntrospection: false,
      introspection: true,
    });
    try {
      const refused = await ask(enabled, getIntrospectionQuery());
      expect(refused.status).toBe(400);
      expect(codesOf(refused.body.errors)).toContain('MAX_DEPTH_EXCEEDED');
      expect((await ask(enabled, '{ __schema { queryType { name } } }')).status).toBe(200);
    } finally {
      await enabled.close();
    }
    expect(proxy.calls).toBe(0);
  });
});
