import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';

/** The algorithm of development tokens. */
export const DEV_ALGORITHM = 'ES256';

const keyFile = (dataDir: string) => join(dataDir, 'jwt-dev-key.json');

/** Creates the development signing key under dataDir once; concurrent callers all end up with the same key. */
export async function ensureDevKeys(dataDir: string): Promise<JWK> {
  const path = keyFile(dataDir);
  try {
    return JSON.parse(await readFile(path, 'utf8')) as JWK;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true });
  const { privateKey } = await generateKeyPair(DEV_ALGORITHM, { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: DEV_ALGORITHM, kid: 'pulsegraph-dev' };
  // Write aside, then hard-link into place: link fails if another process won the race.
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, JSON.stringify(jwk), { mode: 0o600 });
  try {
    await link(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await unlink(tmp);
  }
  return JSON.parse(await readFile(path, 'utf8')) as JWK;
}

/** The public half of the development key, for verifiers. */
export async function devPublicKey(dataDir: string): Promise<CryptoKey | Uint8Array> {
  const { d: _private, ...publicJwk } = await ensureDevKeys(dataDir);
  return importJWK(publicJwk, DEV_ALGORITHM);
}

/** What a development token grants. */
export interface DevTokenClaims {
  tenant: string;
  roles?: string[];
  scopes?: string[];
  subject?: string;
  /** Lifetime, e.g. "12h" (jose's time span syntax). */
  expiresIn?: string;
}

/** Signs a development JWT with the key under dataDir. */
export async function signDevToken(
  dataDir: string,
  claims: DevTokenClaims,
  audience = 'pulsegraph',
  issuer = 'pulsegraph',
): Promise<string> {
  const key = await importJWK(await ensureDevKeys(dataDir), DEV_ALGORITHM);
  return new SignJWT({
    tenant: claims.tenant,
    roles: claims.roles ?? ['viewer'],
    scopes: claims.scopes ?? [],
  })
    .setProtectedHeader({ alg: DEV_ALGORITHM, kid: 'pulsegraph-dev', typ: 'JWT' })
    .setSubject(claims.subject ?? `dev:${claims.tenant}`)
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(claims.expiresIn ?? '12h')
    .sign(key);
}
