// node examples/client/main.ts [KPI_CODE ...]: prints the tenant's KPIs, then streams live values of the
// given KPIs (all of them by default) until Ctrl-C. GRAPHQL_URL defaults to the local gateway; TOKEN is
// a JWT, e.g. TOKEN=$(npm run -s token -- --tenant acme --roles viewer).
import { kpiOverview, watchKpis } from './kpiWatch.ts';

const url = process.env['GRAPHQL_URL'] ?? 'http://127.0.0.1:4000/graphql';
const token = process.env['TOKEN'];
if (!token) {
  process.stderr.write('TOKEN is required: TOKEN=$(npm run -s token -- --tenant acme --roles viewer)\n');
  process.exit(1);
}

const kpis = await kpiOverview({ url, token });
for (const kpi of kpis) {
  const value = kpi.current?.value ?? 'n/a';
  process.stdout.write(`${kpi.code}\t${kpi.name}\t${value} ${kpi.unit ?? ''} (last ${kpi.window})\n`);
}

const codes = process.argv.length > 2 ? process.argv.slice(2) : kpis.map((kpi) => kpi.code);
const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
await watchKpis({ url, token, codes, signal: controller.signal }, (update) => {
  process.stdout.write(
    `${update.at}\t${update.kpi.code}\t${update.value ?? 'null'} ${update.kpi.unit ?? ''}\n`,
  );
});
