// `npm run codegen` output is committed: regenerating it from codegen.ts (in memory, nothing written)
// must give exactly the files in dashboard/src/gql/ and examples/client/gql/. Its manifests are what the
// gateway's persisted-only mode reads: SHA-256 hex of each document's text -> a valid operation.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { generate } from '@graphql-codegen/cli';
import { buildSchema, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import config from '../codegen.ts';
import { parseManifest, sha256Hex } from '../gateway/persistedOperations.ts';

const targets = Object.keys(config.generates);

/** What codegen.ts generates now, by path relative to the repository root. */
async function regenerate(): Promise<Map<string, string>> {
  // Without saving, generate resolves to the files it would write (its declared type is any).
  const outputs = (await generate({ ...config, cwd: process.cwd(), silent: true }, false)) as Array<{
    filename: string;
    content: string;
  }>;
  return new Map(
    outputs.map((output) => [relative(process.cwd(), resolve(output.filename)), output.content]),
  );
}

describe('npm run codegen', () => {
  it('regenerates exactly the committed dashboard/src/gql/ and examples/client/gql/ (run npm run codegen)', async () => {
    const generated = await regenerate();
    expect(targets).toEqual(['dashboard/src/gql/', 'examples/client/gql/']);
    const committed = targets.flatMap((dir) =>
      existsSync(dir) ? readdirSync(dir).map((name) => join(dir, name)) : [],
    );
    expect(committed.sort(), 'generated files and committed files differ: run npm run codegen').toEqual(
      [...generated.keys()].sort(),
    );
    for (const [path, content] of generated) {
      expect(readFileSync(path, 'utf8'), `${path} is stale: run npm run codegen`).toBe(content);
    }
  }, 60_000);

  it('writes manifests the gateway reads: each id the SHA-256 hex of its text, each text a valid operation', () => {
    const schema = buildSchema(readFileSync('schema.graphql', 'utf8'));
    for (const dir of targets) {
      const manifest = parseManifest(readFileSync(join(dir, 'persisted-documents.json'), 'utf8'));
      expect(manifest.size, dir).toBeGreaterThan(0);
      for (const [id, text] of manifest) {
        expect(id).toMatch(/^[0-9a-f]{64}$/);
        expect(sha256Hex(text)).toBe(id);
        expect(validate(schema, parse(text)).map((error) => error.message)).toEqual([]);
      }
    }
  });
});
