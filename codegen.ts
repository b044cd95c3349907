// `npm run codegen`: typed documents for the dashboard from the committed client schema, with
// graphql-codegen's client preset, and the persisted-operation manifest the gateway's safelist mode
// (PERSISTED_ONLY) reads: dashboard/src/gql/persisted-documents.json, SHA-256 of each document's text.
// The output is committed; a test regenerates it and fails when it differs.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['dashboard/src/**/*.ts', '!dashboard/src/gql/**'],
  ignoreNoDocuments: false,
  generates: {
    'dashboard/src/gql/': {
      preset: 'client',
      presetConfig: { persistedDocuments: { hashAlgorithm: 'sha256' }, fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown' },
      },
    },
  },
};

export default config;
