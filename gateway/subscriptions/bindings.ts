// The @jetstream bindings of subscription fields, read from the supergraph, and the subjects they
// stand for once a subscriber's tenant and arguments are known.
import type { Schema } from '@apollo/federation-internals';
import { TENANT_PATTERN } from '../../lib/auth.ts';
import { appError } from '../../lib/errors.ts';
import { isSubjectToken, Stream, type StreamName } from '../../streams/subjects.ts';

/** How a subscription field is served from a stream (see the directive in the metrics schema). */
export interface StreamBinding {
  field: string;
  stream: StreamName;
  subject: string;
  select?: string;
  cursorField?: string;
  resumeArgument?: string;
  snapshot: boolean;
  conflate: boolean;
}

interface DirectiveArgs {
  stream: string;
  subject: string;
  select?: string;
  cursorField?: string;
  resumeArgument?: string;
  snapshot?: boolean;
  conflate?: boolean;
}

const STREAMS = new Set<string>(Object.values(Stream));
/** A subject template's tokens: `{...}` placeholders may hold dots (`{args.codes}`). */
const tokensOf = (template: string): string[] => template.match(/\{[^}]*\}|[^.]+/g) ?? [];
const TOKEN = /^(?:[A-Za-z0-9_-]+|\{tenant\}|\{args\.[A-Za-z_][A-Za-z0-9_]*\})$/;

/** Subscription field name -> binding, for every field carrying @jetstream. */
export function readBindings(supergraph: Schema): Map<string, StreamBinding> {
  const bindings = new Map<string, StreamBinding>();
  const subscription = supergraph.schemaDefinition.rootType('subscription');
  for (const field of subscription?.fields() ?? []) {
    const [directive] = field.appliedDirectivesOf<DirectiveArgs>('jetstream');
    if (!directive) continue;
    const args = directive.arguments();
    if (!STREAMS.has(args.stream))
      throw new Error(`@jetstream on ${field.name}: unknown stream ${args.stream}`);
    const tokens = tokensOf(args.subject);
    if (!tokens.every((token) => TOKEN.test(token)) || !tokens.includes('{tenant}')) {
      throw new Error(
        `@jetstream on ${field.name}: subject ${args.subject} must hold {tenant} and plain tokens`,
      );
    }
    bindings.set(field.name, {
      field: field.name,
      stream: args.stream as StreamName,
      subject: args.subject,
      select: args.select,
      cursorField: args.cursorField,
      resumeArgument: args.resumeArgument,
      snapshot: args.snapshot ?? false,
      conflate: args.conflate ?? false,
    });
  }
  return bindings;
}

function argumentValues(name: string, args: Record<string, unknown>): string[] {
  const raw = args[name];
  const values = (Array.isArray(raw) ? raw : [raw]).map(String);
  for (const value of values) {
    if (!isSubjectToken(value)) {
      throw appError('BAD_USER_INPUT', `${name}: ${JSON.stringify(value)} is not a valid code or name`);
    }
  }
  return values;
}

/** Every subject a subscriber listens on: the template with its tenant and each argument value. */
export function subjectsOf(binding: StreamBinding, tenant: string, args: Record<string, unknown>): string[] {
  if (!TENANT_PATTERN.test(tenant)) throw appError('FORBIDDEN', 'the token carries no valid tenant');
  let subjects = [''];
  for (const token of tokensOf(binding.subject)) {
    const values =
      token === '{tenant}'
        ? [tenant]
        : token.startsWith('{args.')
          ? argumentValues(token.slice(6, -1), args)
          : [token];
    subjects = subjects.flatMap((prefix) => values.map((value) => (prefix ? `${prefix}.${value}` : value)));
  }
  return [...new Set(subjects)];
}

/**
 * The filter of the feed that serves a tenant's subscribers of a binding: the template up to its first
 * argument, then `>`. One consumer per tenant and filter serves every such subscriber, in stream order.
 */
export function feedFilterOf(binding: StreamBinding, tenant: string): string {
  const tokens = tokensOf(binding.subject);
  const firstArgument = tokens.findIndex((token) => token.startsWith('{args.'));
  const fixed = (firstArgument < 0 ? tokens : tokens.slice(0, firstArgument)).map((token) =>
    token === '{tenant}' ? tenant : token,
  );
  return firstArgument < 0 ? fixed.join('.') : [...fixed, '>'].join('.');
}
