// npm run bench [-- name]: runs every benchmark, or the named one, and prints tables of ratios.
import { benchFanout } from './fanout.ts';
import { benchIngest } from './ingest.ts';

const benches: Record<string, () => Promise<void>> = { ingest: benchIngest, fanout: benchFanout };
const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in benches));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length ? wanted : Object.keys(benches)) await benches[name]!();
