// `npm run codegen`: typed documents from the committed client schema, with graphql-codegen's client
// preset, for the dashboard (dashboard/src/gql/) and for the example client (examples/client/gql/).
// The dashboard's target also writes the persisted-operation manifest that the gateway's safelist mode
// (PERSISTED_ONLY) reads by default: dashboard/src/gql/persisted-documents.json, an object of the
// SHA-256 hex of each document's text to that text. The output is committed; test/codegen.test.ts
// regenerates it in memory and fails when it differs.
import { createHash } from 'node:crypto';
import type { CodegenConfig } from '@graphql-codegen/cli';

/** The manifest id of a document: the bare SHA-256 hex of its text (the preset's own would add `sha256:`). */
const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** What both targets map the custom scalars to, as they travel in JSON. */
const scalars = { DateTime: 'string', JSON: 'unknown' };

const config: CodegenConfig = {
  schema: 'schema.graphql',
  ignoreNoDocuments: false,
  generates: {
    'dashboard/src/gql/': {
      documents: ['dashboard/src/**/*.ts', '!dashboard/src/gql/**'],
      preset: 'client',
      // The page sends documentIds only: its bundle carries each document's hash, not its text.
      presetConfig: {
        persistedDocuments: { hashAlgorithm: sha256Hex, mode: 'replaceDocumentWithHash' },
        fragmentMasking: false,
      },
      // .ts imports: the root tsconfig (nodenext) type-checks the dashboard too.
      config: { useTypeImports: true, enumsAsTypes: true, scalars, importExtension: '.ts' },
    },
    // Node runs it as it is (.ts imports); documentMode string: each document is its text, for fetch.
    'examples/client/gql/': {
      documents: ['examples/client/**/*.ts', '!examples/client/gql/**'],
      preset: 'client',
      presetConfig: { persistedDocuments: { hashAlgorithm: sha256Hex }, fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars,
        documentMode: 'string',
        importExtension: '.ts',
      },
    },
  },
};

export default config;
