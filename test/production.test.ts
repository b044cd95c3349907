import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ production: true });
});
afterAll(() => platform?.stop());

describe('in production (NODE_ENV=production, JWT_PUBLIC_KEY)', () => {
  it('keeps the code and message of errors the platform raises on purpose', async () => {
    const viewer = await platform.token('acme', ['viewer']);
    const define = `mutation { defineKpi(input: { code: "a.b", name: "x", eventName: "e", aggregation: COUNT }) { code } }`;
    const forbidden = await platform.graphql(define, { token: viewer });
    expect(forbidden.body.errors?.[0]).toMatchObject({
      message: 'not allowed to define: roles [viewer] do not grant it',
      extensions: { code: 'FORBIDDEN' },
    });
    const admin = await platform.token('acme', ['admin']);
    const invalid = await platform.graphql(
      `mutation { defineKpi(input: { code: "Bad", name: "x", eventName: "e", aggregation: COUNT }) { code } }`,
      { token: admin },
    );
    expect(invalid.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(invalid.body)).not.toMatch(/stack|at .*\.ts:\d+/);
  });

  it('accepts tokens signed by the configured key and refuses anonymous introspection', async () => {
    const viewer = await platform.token('acme', ['viewer']);
    expect((await platform.graphql('{ kpis { code } }', { token: viewer })).body).toEqual({
      data: { kpis: [] },
    });
    const anonymous = await platform.graphql('{ __schema { queryType { name } } }');
    expect(anonymous.status).toBe(401);
  });
});
