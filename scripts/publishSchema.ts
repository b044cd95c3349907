// node scripts/publishSchema.ts: on release, records schema.graphql as the schema clients were given
// (schema.published.graphql), which test/schemaCompatibility.test.ts then holds every later change to.
// Refuses while schema.graphql breaks clients of the last published schema without a deprecation first.
import { readFileSync, writeFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { unannouncedBreakingChanges } from './schemaCompatibility.ts';

const current = readFileSync('schema.graphql', 'utf8');
const breaking = await unannouncedBreakingChanges(
  buildSchema(readFileSync('schema.published.graphql', 'utf8')),
  buildSchema(current),
);
if (breaking.length > 0) {
  process.stderr.write(
    `schema.graphql breaks clients of schema.published.graphql; deprecate first, remove in a later release:\n` +
      breaking.map((change) => `- ${change.message}\n`).join(''),
  );
  process.exit(1);
}
writeFileSync('schema.published.graphql', current);
process.stdout.write('published schema.graphql as schema.published.graphql\n');
