// Preloaded into a child process (`node --import ./test/support/packageRecorder.ts ...`): records the npm
// packages the process loads, by import or require, and writes their names, one per line, to the file in
// PACKAGES_LOADED_FILE when the process exits.
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const packages = new Set<string>();
registerHooks({
  load(url, context, nextLoad) {
    const name = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
    if (name) packages.add(name);
    return nextLoad(url, context);
  },
});
process.on('exit', () => writeFileSync(process.env['PACKAGES_LOADED_FILE']!, [...packages].join('\n')));
