import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { composeSupergraph, CompositionError, readSupergraphConfig } from './composition.ts';

const sources = readSupergraphConfig('supergraph.yaml');

describe('composition', () => {
  it('keeps the committed supergraph.graphql and schema.graphql in step with the subgraphs (run npm run compose)', () => {
    const { supergraphSdl, apiSchemaSdl } = composeSupergraph(sources);
    expect(
      readFileSync('supergraph.graphql', 'utf8'),
      'supergraph.graphql is stale: run npm run compose',
    ).toBe(supergraphSdl);
    expect(readFileSync('schema.graphql', 'utf8'), 'schema.graphql is stale: run npm run compose').toBe(
      apiSchemaSdl,
    );
  });

  it('keeps federation internals out of the client-facing schema', () => {
    const { apiSchemaSdl } = composeSupergraph(sources);
    expect(apiSchemaSdl).not.toMatch(/join__|link__|_entities|_service|@key/);
    expect(apiSchemaSdl).toMatch(/type Kpi \{/);
  });

  it('spells out a composition error with the subgraph, its file and the line', () => {
    const broken = sources.map((s) =>
      s.name === 'insights'
        ? { ...s, sdl: s.sdl.replace('code: ID!\n  "The latest', 'code: String!\n  "The latest') }
        : s,
    );
    expect(broken.find((s) => s.name === 'insights')!.sdl).not.toBe(
      sources.find((s) => s.name === 'insights')!.sdl,
    );
    let message = '';
    try {
      composeSupergraph(broken);
    } catch (error) {
      expect(error).toBeInstanceOf(CompositionError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/^composition failed with \d+ error\(s\):/);
    expect(message).toMatch(/Kpi\.code/);
    expect(message).toMatch(/subgraphs\/insights\/schema\.graphql:\d+/);
  });

  it('names the subgraph and file of a syntax error', () => {
    const broken = sources.map((s) => (s.name === 'metrics' ? { ...s, sdl: `${s.sdl}\ntype {` } : s));
    expect(() => composeSupergraph(broken)).toThrow(
      /^metrics: .*subgraphs\/metrics\/schema\.graphql: Syntax Error/,
    );
  });
});
