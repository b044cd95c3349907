import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type CryptoKey,
  type JWTVerifyGetKey,
} from 'jose';
import { z } from 'zod';
import type { Config } from './config.ts';
import { devPublicKey, DEV_ALGORITHM } from './devKeys.ts';
import { appError, requestError } from './errors.ts';

/** The roles of runtime.md. */
export const ROLES = ['viewer', 'analyst', 'ingest', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What a caller may try to do; each resolver names the action it needs. */
export type Action = 'read' | 'subscribe' | 'define' | 'report' | 'ingest';

const PERMISSIONS: Record<Role, readonly Action[]> = {
  viewer: ['read', 'subscribe'],
  analyst: ['read', 'subscribe', 'define', 'report'],
  ingest: ['ingest'],
  admin: ['read', 'subscribe', 'define', 'report', 'ingest'],
};

/** A verified caller. */
export interface Principal {
  tenant: string;
  subject: string;
  roles: Role[];
  scopes: string[];
  /** When the token expires (ms since the epoch): long-lived connections end then. */
  expiresAt?: number;
}

/** Tenant ids appear in NATS subjects and Redis channels, so they stay to a safe alphabet. */
export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

const claimsSchema = z.object({
  sub: z.string().min(1).optional(),
  exp: z.number().optional(),
  tenant: z.string().regex(TENANT_PATTERN, 'expected a tenant id of letters, digits, "_" or "-"'),
  roles: z.array(z.string()).default([]),
  scopes: z
    .union([z.array(z.string()), z.string().transform((s) => s.split(' ').filter(Boolean))])
    .default([]),
});

/** Verifies bearer tokens and turns them into principals. */
export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
}

const ASYMMETRIC = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];

/** Builds the verifier the config asks for: dev key, a PEM public key, or a remote JWKS. */
export async function createTokenVerifier(
  config: Pick<
    Config,
    'AUTH_MODE' | 'DATA_DIR' | 'JWT_JWKS_URL' | 'JWT_PUBLIC_KEY' | 'JWT_ISSUER' | 'JWT_AUDIENCE'
  >,
): Promise<TokenVerifier> {
  let key: CryptoKey | Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (config.AUTH_MODE === 'dev') {
    key = await devPublicKey(config.DATA_DIR);
    algorithms = [DEV_ALGORITHM];
  } else if (config.JWT_PUBLIC_KEY) {
    key = createPublicKey(config.JWT_PUBLIC_KEY);
    algorithms = ASYMMETRIC;
  } else {
    key = createRemoteJWKSet(new URL(config.JWT_JWKS_URL!));
    algorithms = ASYMMETRIC;
  }
  const options = {
    algorithms,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    requiredClaims: ['exp'],
    clockTolerance: 5,
  };
  return {
    async verify(token) {
      let payload: unknown;
      try {
        // jwtVerify is overloaded on the key's kind; both branches run the same checks.
        payload = (
          typeof key === 'function'
            ? await jwtVerify(token, key, options)
            : await jwtVerify(token, key, options)
        ).payload;
      } catch (error) {
        throw requestError('UNAUTHENTICATED', `invalid token: ${describeJoseError(error)}`);
      }
      const claims = claimsSchema.safeParse(payload);
      if (!claims.success) {
        const issue = claims.error.issues[0]!;
        throw requestError(
          'UNAUTHENTICATED',
          `invalid token: claim ${issue.path.join('.')}: ${issue.message}`,
        );
      }
      const { tenant, sub, roles, scopes, exp } = claims.data;
      return {
        tenant,
        subject: sub ?? tenant,
        roles: roles.filter((r): r is Role => (ROLES as readonly string[]).includes(r)),
        scopes,
        ...(exp === undefined ? {} : { expiresAt: exp * 1000 }),
      };
    },
  };
}

function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `claim ${error.claim}: ${error.message}`;
  if (error instanceof joseErrors.JOSEError)
    return error.code.replace(/^ERR_/, '').toLowerCase().replaceAll('_', ' ');
  return 'malformed';
}

/** Extracts the token from an `Authorization: Bearer ...` header value. */
export function bearerToken(header: string | null | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** Whether the principal's roles allow the action. */
export function can(principal: Principal, action: Action): boolean {
  return principal.roles.some((role) => PERMISSIONS[role].includes(action));
}

/** Returns the principal if it may perform the action; otherwise throws UNAUTHENTICATED or FORBIDDEN. */
export function authorize(principal: Principal | undefined, action: Action): Principal {
  if (!principal)
    throw appError('UNAUTHENTICATED', 'authentication required: send Authorization: Bearer <token>');
  if (!can(principal, action)) {
    throw appError(
      'FORBIDDEN',
      `not allowed to ${action}: roles [${principal.roles.join(', ')}] do not grant it`,
    );
  }
  return principal;
}
