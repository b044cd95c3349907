import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type CryptoKey,
  type JWTVerifyGetKey,
} from 'jose';
import { valueFromASTUntyped, type ConstDirectiveNode } from 'graphql';
import { z } from 'zod';
import type { Config } from './config.ts';
import { devPublicKey, DEV_ALGORITHM } from './devKeys.ts';
import { appError, requestError } from './errors.ts';

/** The roles of runtime.md. */
export const ROLES = ['viewer', 'analyst', 'ingest', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What a caller may try to do: the scopes that the schemas' `@requiresScopes` ask for. */
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

/** Verified tokens remembered at once, and for how long a verdict stands. */
const VERIFIED_TOKENS = 10_000;
const KEEP_VERIFIED_MS = 300_000;
const KEEP_REFUSED_MS = 10_000;

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
  async function verifyOnce(token: string): Promise<Principal> {
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
      throw requestError('UNAUTHENTICATED', `invalid token: claim ${issue.path.join('.')}: ${issue.message}`);
    }
    const { tenant, sub, roles, scopes, exp } = claims.data;
    return Object.freeze({
      tenant,
      subject: sub ?? tenant,
      roles: roles.filter((r): r is Role => (ROLES as readonly string[]).includes(r)),
      scopes,
      ...(exp === undefined ? {} : { expiresAt: exp * 1000 }),
    });
  }
  // A signature check costs far more than the rest of a refused request; a token seen before (a
  // client's every request, or a flood's) is answered from here until it expires. Refusals are kept
  // a short while, so that a flood of one bad token costs one check per interval.
  const verified = new Map<string, { principal?: Principal; error?: unknown; until: number }>();
  return {
    async verify(token) {
      const now = Date.now();
      const known = verified.get(token);
      if (known && known.until > now) {
        if (known.principal) return known.principal;
        throw known.error;
      }
      if (verified.size >= VERIFIED_TOKENS) verified.delete(verified.keys().next().value!);
      try {
        const principal = await verifyOnce(token);
        // Kept no longer than the token is valid, nor than the tolerance jose grants an expired one.
        const until = Math.min(principal.expiresAt ?? now + KEEP_VERIFIED_MS, now + KEEP_VERIFIED_MS);
        verified.set(token, { principal, until });
        return principal;
      } catch (error) {
        verified.set(token, { error, until: now + KEEP_REFUSED_MS });
        throw error;
      }
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

/** Alternative sets of scopes, as `@requiresScopes(scopes:)` states them: holding every scope of one set passes. */
export type ScopeRequirement = readonly (readonly string[])[];

/** The names `@requiresScopes` goes by: imported into a subgraph or the supergraph, or not imported. */
export const REQUIRES_SCOPES_DIRECTIVES = ['requiresScopes', 'federation__requiresScopes'] as const;

// Principals live for one request or connection; their scopes are worked out once.
const scopesOfPrincipal = new WeakMap<Principal, ReadonlySet<string>>();

/** The scopes a principal holds: its token's `scopes` claim plus the actions its roles grant. */
export function effectiveScopes(principal: Principal): ReadonlySet<string> {
  let scopes = scopesOfPrincipal.get(principal);
  if (!scopes) {
    scopes = new Set([...principal.scopes, ...principal.roles.flatMap((role) => PERMISSIONS[role])]);
    scopesOfPrincipal.set(principal, scopes);
  }
  return scopes;
}

/** The first requirement the principal's scopes do not meet, if any. */
export function unmetRequirement(
  principal: Principal,
  requirements: readonly ScopeRequirement[],
): ScopeRequirement | undefined {
  const held = effectiveScopes(principal);
  return requirements.find((alternatives) => !alternatives.some((set) => set.every((s) => held.has(s))));
}

/** Why a requirement refuses the principal: "not allowed to define: roles [viewer] do not grant it". */
export function forbiddenMessage(principal: Principal, requirement: ScopeRequirement): string {
  const wanted = requirement.map((set) => set.join(' and ')).join(' or ');
  const roles = `roles [${principal.roles.join(', ')}]`;
  const held = principal.scopes.length ? `${roles} and scopes [${principal.scopes.join(', ')}]` : roles;
  return `not allowed to ${wanted}: ${held} do not grant it`;
}

/** Returns the principal if it meets every requirement; otherwise throws UNAUTHENTICATED or FORBIDDEN. */
export function requireScopes(
  principal: Principal | undefined,
  requirements: readonly ScopeRequirement[],
): Principal {
  if (!principal)
    throw appError('UNAUTHENTICATED', 'authentication required: send Authorization: Bearer <token>');
  const unmet = unmetRequirement(principal, requirements);
  if (unmet) throw appError('FORBIDDEN', forbiddenMessage(principal, unmet));
  return principal;
}

const isScopeRequirement = (value: unknown): value is string[][] =>
  Array.isArray(value) &&
  value.every((set) => Array.isArray(set) && set.every((scope) => typeof scope === 'string'));

/**
 * The requirement of a `@requiresScopes` among a schema element's directives, if it carries one; throws
 * when its `scopes` is not a list of lists of strings, so that a wrong schema fails at start.
 */
export function requiredScopesOf(
  directives: readonly ConstDirectiveNode[] | undefined,
  names: readonly string[] = REQUIRES_SCOPES_DIRECTIVES,
): ScopeRequirement | undefined {
  const directive = directives?.find((d) => names.includes(d.name.value));
  if (!directive) return undefined;
  const argument = directive.arguments?.find((a) => a.name.value === 'scopes');
  const scopes: unknown = argument && valueFromASTUntyped(argument.value);
  if (!isScopeRequirement(scopes)) {
    throw new Error(
      `@${directive.name.value}: expected scopes: [[String!]!]!, but got ${JSON.stringify(scopes)}`,
    );
  }
  return scopes;
}

/** Whether the principal's roles or scopes allow the action. */
export function can(principal: Principal, action: Action): boolean {
  return effectiveScopes(principal).has(action);
}

/** Returns the principal if it may perform the action; otherwise throws UNAUTHENTICATED or FORBIDDEN. */
export function authorize(principal: Principal | undefined, action: Action): Principal {
  return requireScopes(principal, [[[action]]]);
}
