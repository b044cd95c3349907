// GraphQL over HTTP conformance (issue #7): graphql-http's server audits run against the real gateway.
// Every MUST audit passes, and no SHOULD audit warns either.
import { serverAudits, type AuditResult } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let platform: TestPlatform;
let token: string;

beforeAll(async () => {
  platform = await startTestPlatform();
  token = await platform.token('conformance', ['viewer']);
});
afterAll(() => platform?.stop());

/** The audits' fetch, with the caller's token: every operation of the platform needs one. */
const authorizedFetch = (input: RequestInfo | URL, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

describe('GraphQL over HTTP conformance (graphql-http server audits)', () => {
  it('passes every MUST audit and every SHOULD audit', async () => {
    const audits = serverAudits({ url: () => platform.gatewayUrl, fetchFn: authorizedFetch });
    const results: AuditResult[] = [];
    for (const audit of audits) results.push(await audit.fn());
    const failures = results.filter((result) => result.status === 'error');
    expect(
      failures.map((failure) => `${failure.name}: ${'reason' in failure ? failure.reason : ''}`),
      'MUST audits failed',
    ).toEqual([]);
    const warnings = results
      .filter((result) => result.status === 'warn')
      .map((result) => `${result.name}: ${'reason' in result ? result.reason : ''}`);
    console.log(
      `graphql-http audits: ${results.length} run, ${warnings.length} warnings\n${warnings.join('\n')}`,
    );
    expect(warnings, 'SHOULD audits warned').toEqual([]);
    expect(results.length).toBeGreaterThan(40);
  });
});
