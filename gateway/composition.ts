import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { composeServices } from '@apollo/composition';
import { parse, printSchema, type ASTNode, type GraphQLError } from 'graphql';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';

const configSchema = z.object({
  federation_version: z.string().optional(),
  subgraphs: z.record(
    z.string().regex(/^[a-z][a-z0-9_-]*$/),
    z.object({ routing_url: z.string().url(), schema: z.object({ file: z.string() }) }),
  ),
});

/** One subgraph of supergraph.yaml, with its SDL read from disk. */
export interface SubgraphSource {
  name: string;
  url: string;
  file: string;
  sdl: string;
}

/** Raised when supergraph.yaml is malformed or the subgraphs do not compose; the message lists every error. */
export class CompositionError extends Error {
  override name = 'CompositionError';
}

/** Reads supergraph.yaml (Rover's format) and the schema file of each subgraph. */
export function readSupergraphConfig(path: string): SubgraphSource[] {
  const parsed = configSchema.safeParse(parseYaml(readFileSync(path, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CompositionError(`${path}: ${issue.path.join('.')}: ${issue.message}`);
  }
  return Object.entries(parsed.data.subgraphs).map(([name, entry]) => {
    const file = resolve(dirname(path), entry.schema.file);
    return { name, url: entry.routing_url, file, sdl: readFileSync(file, 'utf8') };
  });
}

function whereIs(node: ASTNode | undefined, sources: SubgraphSource[]): string {
  const loc = node?.loc;
  if (!loc) return '';
  const source = sources.find((s) => s.sdl === loc.source.body);
  const line = loc.source.body.slice(0, loc.start).split('\n').length;
  return ` (${source ? source.file : loc.source.name}:${line})`;
}

/** Composes the subgraphs into the supergraph SDL and the client-facing API schema SDL. */
export function composeSupergraph(sources: SubgraphSource[]): {
  supergraphSdl: string;
  apiSchemaSdl: string;
} {
  const services = sources.map((s) => {
    try {
      return { name: s.name, url: s.url, typeDefs: parse(s.sdl, { noLocation: false }) };
    } catch (error) {
      throw new CompositionError(`${s.name}: ${s.file}: ${(error as Error).message}`);
    }
  });
  const result = composeServices(services);
  if (result.errors) {
    const lines = result.errors.map((error: GraphQLError) => {
      const code = (error.extensions['code'] as string | undefined) ?? 'COMPOSITION_ERROR';
      const where = (error.nodes ?? []).map((n) => whereIs(n, sources)).join('');
      return `- [${code}] ${error.message}${where}`;
    });
    throw new CompositionError(`composition failed with ${lines.length} error(s):\n${lines.join('\n')}`);
  }
  return {
    supergraphSdl: result.supergraphSdl,
    apiSchemaSdl: `${printSchema(result.schema.toAPISchema().toGraphQLJSSchema())}\n`,
  };
}
