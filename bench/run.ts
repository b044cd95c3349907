// npm run bench [-- name] [-- --quick]: runs every benchmark, or the named one, and prints tables of ratios.
import { benchDashboard } from './dashboard.ts';
import { benchFanout } from './fanout.ts';
import { benchFanoutWrites } from './fanoutWrites.ts';
import { benchGateway } from './gateway.ts';
import { benchIngest } from './ingest.ts';
import { benchKpiQuery } from './kpiQuery.ts';

const benches: Record<string, () => Promise<void>> = {
  ingest: benchIngest,
  fanout: benchFanout,
  'fanout-writes': benchFanoutWrites,
  gateway: benchGateway,
  'kpi-query': benchKpiQuery,
  dashboard: benchDashboard,
};
// --quick: short phases and small data, to check that a bench runs end to end (figures indicative only).
const args = process.argv.slice(2);
if (args.includes('--quick')) process.env['BENCH_QUICK'] = '1';
const wanted = args.filter((arg) => !arg.startsWith('--'));
const unknown = wanted.filter((name) => !(name in benches));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length ? wanted : Object.keys(benches)) await benches[name]!();
