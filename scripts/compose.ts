// npm run compose: supergraph.yaml -> supergraph.graphql and schema.graphql (the client-facing API schema).
import { writeFileSync } from 'node:fs';
import { composeSupergraph, CompositionError, readSupergraphConfig } from '../gateway/composition.ts';

try {
  const { supergraphSdl, apiSchemaSdl } = composeSupergraph(readSupergraphConfig('supergraph.yaml'));
  writeFileSync('supergraph.graphql', supergraphSdl);
  writeFileSync('schema.graphql', apiSchemaSdl);
  process.stdout.write('composed supergraph.graphql and schema.graphql\n');
} catch (error) {
  if (!(error instanceof CompositionError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
