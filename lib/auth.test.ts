import { rm } from 'node:fs/promises';
import { exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authorize,
  bearerToken,
  can,
  createTokenVerifier,
  type Principal,
  type TokenVerifier,
} from './auth.ts';
import { ensureDevKeys, signDevToken } from './devKeys.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

let dataDir: string;
let verifier: TokenVerifier;
const settings = { JWT_ISSUER: 'pulsegraph', JWT_AUDIENCE: 'pulsegraph' } as const;

beforeAll(async () => {
  dataDir = await scratchDir('auth');
  verifier = await createTokenVerifier({ ...settings, AUTH_MODE: 'dev', DATA_DIR: dataDir });
});

// The directories hold private keys: none is left behind.
const scratch: string[] = [];
afterAll(() => Promise.all([dataDir, ...scratch].map((dir) => rm(dir, { recursive: true, force: true }))));

const codeOf = async (promise: Promise<unknown>) =>
  promise.then(
    () => 'accepted',
    (error: { extensions?: { code?: string }; message: string }) =>
      `${error.extensions?.code}: ${error.message}`,
  );

describe('token verification', () => {
  it('accepts a dev token and reads tenant, roles and scopes', async () => {
    const token = await signDevToken(dataDir, {
      tenant: 'acme',
      roles: ['analyst', 'bogus'],
      scopes: ['reports:read'],
    });
    await expect(verifier.verify(token)).resolves.toEqual({
      tenant: 'acme',
      subject: 'dev:acme',
      roles: ['analyst'],
      scopes: ['reports:read'],
      expiresAt: expect.any(Number) as number,
    });
  });

  it('refuses an expired token', async () => {
    const key = await ensureDevKeys(dataDir);
    const { importJWK } = await import('jose');
    const token = await new SignJWT({ tenant: 'acme', roles: ['admin'] })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('pulsegraph')
      .setAudience('pulsegraph')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(await importJWK(key, 'ES256'));
    expect(await codeOf(verifier.verify(token))).toBe('UNAUTHENTICATED: invalid token: expired');
  });

  it('refuses a token signed by another key', async () => {
    const other = await scratchDir('other');
    scratch.push(other);
    const forged = await signDevToken(other, { tenant: 'acme', roles: ['admin'] });
    expect(await codeOf(verifier.verify(forged))).toBe(
      'UNAUTHENTICATED: invalid token: signature does not verify',
    );
  });

  it('refuses an unsigned alg:none token', async () => {
    const none = new UnsecuredJWT({ tenant: 'acme', roles: ['admin'] })
      .setIssuer('pulsegraph')
      .setAudience('pulsegraph')
      .setExpirationTime('1h')
      .encode();
    expect(await codeOf(verifier.verify(none))).toMatch(/^UNAUTHENTICATED: invalid token/);
  });

  it('refuses another audience, a token without tenant, and garbage', async () => {
    const wrongAudience = await signDevToken(dataDir, { tenant: 'acme' }, 'someone-else');
    expect(await codeOf(verifier.verify(wrongAudience))).toBe(
      'UNAUTHENTICATED: invalid token: claim aud: unexpected "aud" claim value',
    );
    const badTenant = await signDevToken(dataDir, { tenant: 'acme.*' });
    expect(await codeOf(verifier.verify(badTenant))).toMatch(
      /^UNAUTHENTICATED: invalid token: claim tenant: expected a tenant id/,
    );
    expect(await codeOf(verifier.verify('not.a.jwt'))).toMatch(/^UNAUTHENTICATED: invalid token/);
  });

  it('verifies RS256 tokens against a configured PEM public key', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const pem = await exportSPKI(publicKey);
    const pemVerifier = await createTokenVerifier({
      ...settings,
      AUTH_MODE: 'jwt',
      DATA_DIR: dataDir,
      JWT_PUBLIC_KEY: pem,
    });
    const token = await new SignJWT({ tenant: 'acme', roles: ['viewer'] })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('pulsegraph')
      .setAudience('pulsegraph')
      .setExpirationTime('5m')
      .sign(privateKey);
    await expect(pemVerifier.verify(token)).resolves.toMatchObject({ tenant: 'acme', roles: ['viewer'] });
    const devToken = await signDevToken(dataDir, { tenant: 'acme' });
    expect(await codeOf(pemVerifier.verify(devToken))).toMatch(/^UNAUTHENTICATED/);
  });

  it('extracts bearer tokens only from a well-formed header', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(null)).toBeUndefined();
  });
});

describe('roles', () => {
  const as = (...roles: Principal['roles']): Principal => ({ tenant: 't', subject: 's', roles, scopes: [] });

  it('grants what runtime.md says each role may do', () => {
    expect(
      ['read', 'subscribe', 'define', 'report', 'ingest'].filter((a) => can(as('viewer'), a as never)),
    ).toEqual(['read', 'subscribe']);
    expect(can(as('analyst'), 'define')).toBe(true);
    expect(can(as('analyst'), 'ingest')).toBe(false);
    expect(can(as('ingest'), 'ingest')).toBe(true);
    expect(can(as('ingest'), 'read')).toBe(false);
    expect(can(as('admin'), 'ingest') && can(as('admin'), 'define')).toBe(true);
  });

  it('throws FORBIDDEN for a missing role and UNAUTHENTICATED without a principal', () => {
    expect(() => authorize(as('viewer'), 'define')).toThrow(/not allowed to define/);
    expect(() => authorize(undefined, 'read')).toThrow(/authentication required/);
    expect(authorize(as('viewer', 'analyst'), 'define').tenant).toBe('t');
  });
});
