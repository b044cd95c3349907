// The dashboard page: takes a token, shows the tenant's KPIs as live tiles, the latest insights and
// report progress, and says how its connection stands.
import { ApiError, connectLive, runQuery, type ConnectionState, type LiveConnection } from './api.ts';
import type { DashboardQuery as DashboardData } from './gql/graphql.ts';
import { InsightList } from './insights.ts';
import {
  DashboardQuery,
  KpiUpdatedSubscription,
  NewInsightsSubscription,
  ReportProgressSubscription,
} from './operations.ts';
import { ReportList } from './reports.ts';
import './styles.css';
import { KpiTile } from './tiles.ts';

const TOKEN_KEY = 'pulsegraph.token';
// The sparklines' hour moves on; the snapshot (series, insights, reports) is read again this often.
const REFRESH_MS = 60_000;
// ... and, while live values arrive, at most this long after one, so the sparklines follow them.
const FOLLOW_MS = 10_000;
// Subscriptions are bounded per connection (MAX_SUBSCRIPTIONS_PER_CONNECTION): insights of the first
// KPIs and progress of the first reports only.
const MAX_INSIGHT_FEEDS = 50;
const MAX_REPORT_FEEDS = 10;

const STATE_TEXT: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

/** An element the page's HTML must hold. */
function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`expected #${id} in index.html`);
  return found as T;
}

const view = {
  connection: byId('connection'),
  problem: byId('problem'),
  signIn: byId<HTMLFormElement>('sign-in'),
  tokenInput: byId<HTMLInputElement>('token'),
  signOut: byId<HTMLButtonElement>('sign-out'),
  kpis: byId('kpis'),
  tiles: byId('tiles'),
  panels: byId('panels'),
};

/** Shows (or with no text, hides) the problem line. */
function showProblem(text?: string): void {
  view.problem.textContent = text ?? '';
  view.problem.hidden = !text;
}

function showConnection(state: ConnectionState, detail?: string): void {
  view.connection.dataset['state'] = state;
  view.connection.textContent = detail ? `${STATE_TEXT[state]}: ${detail}` : STATE_TEXT[state];
}

/** The token of `?token=` (moved into sessionStorage and out of the address bar), or the stored one. */
function takeToken(): string | undefined {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given.trim());
    url.searchParams.delete('token');
    history.replaceState(null, '', url);
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** The signed-in page: tiles, insights and reports, kept live. */
class Dashboard {
  readonly #token: string;
  readonly #live: LiveConnection;
  readonly #tiles = new Map<string, KpiTile>();
  readonly #insights = new InsightList();
  readonly #reports = new ReportList();
  #kpiFeeds: (() => void)[] = [];
  #reportFeeds: (() => void)[] = [];
  #codes = '';
  #reportIds = '';
  #timer: ReturnType<typeof setInterval> | undefined;
  #following: ReturnType<typeof setTimeout> | undefined;

  constructor(token: string) {
    this.#token = token;
    // After a reconnect, KPI values resume by cursor; insights and reports are read again.
    this.#live = connectLive(token, showConnection, () => void this.refresh());
    view.panels.replaceChildren(this.#insights.element, this.#reports.element);
  }

  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), REFRESH_MS);
  }

  /** Reads the snapshot and shows it; a refused token signs out. */
  async refresh(): Promise<void> {
    const end = new Date();
    const start = new Date(end.getTime() - 3_600_000);
    try {
      const data = await runQuery(this.#token, DashboardQuery, {
        lastHour: { start: start.toISOString(), end: end.toISOString(), interval: '1m' },
      });
      showProblem();
      this.#show(data);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
        signOut(`The token was refused (${error.message}).`);
        return;
      }
      showProblem(`Could not load the dashboard: ${(error as Error).message}`);
    }
  }

  #show(data: DashboardData): void {
    const codes = data.kpis.map((kpi) => kpi.code).join(',');
    if (codes !== this.#codes) {
      this.#codes = codes;
      this.#rebuildTiles(data.kpis);
    } else {
      for (const kpi of data.kpis) {
        const tile = this.#tiles.get(kpi.code);
        tile?.setSeries(kpi.series);
        if (kpi.current) tile?.update(kpi.current.value, kpi.current.at);
      }
    }
    this.#insights.reset(data.kpis.flatMap((kpi) => kpi.insights));
    const reports = data.reports.slice(0, MAX_REPORT_FEEDS);
    this.#reports.reset(reports);
    const reportIds = reports.map((report) => report.id).join(',');
    if (reportIds !== this.#reportIds) {
      this.#reportIds = reportIds;
      for (const stop of this.#reportFeeds) stop();
      this.#reportFeeds = reports.map((report) =>
        this.#live.subscribe(
          ReportProgressSubscription,
          { id: report.id },
          {
            next: (event) => this.#reports.progress(event.reportProgress),
          },
        ),
      );
    }
    view.kpis.hidden = false;
    view.panels.hidden = false;
  }

  #rebuildTiles(kpis: DashboardData['kpis']): void {
    for (const stop of this.#kpiFeeds) stop();
    for (const tile of this.#tiles.values()) tile.destroy();
    this.#tiles.clear();
    this.#kpiFeeds = [];
    if (kpis.length === 0) {
      const empty = document.createElement('p');
      empty.className = 'empty';
      empty.textContent = 'No KPIs yet: define some (npm run simulate defines a set).';
      view.tiles.replaceChildren(empty);
      return;
    }
    view.tiles.replaceChildren();
    for (const kpi of kpis) {
      const tile = new KpiTile(kpi);
      this.#tiles.set(kpi.code, tile);
      view.tiles.append(tile.element);
    }
    const onError = (error: ApiError) => showProblem(`Live updates stopped: ${error.message}`);
    this.#kpiFeeds.push(
      this.#live.subscribe(
        KpiUpdatedSubscription,
        { codes: kpis.map((kpi) => kpi.code), after: null },
        {
          next: ({ kpiUpdated: value }) => {
            this.#tiles.get(value.kpi.code)?.update(value.value, value.at);
            this.#following ??= setTimeout(() => {
              this.#following = undefined;
              void this.refresh();
            }, FOLLOW_MS);
          },
          error: onError,
        },
        (data) => data.kpiUpdated.cursor,
      ),
    );
    for (const kpi of kpis.slice(0, MAX_INSIGHT_FEEDS)) {
      this.#kpiFeeds.push(
        this.#live.subscribe(
          NewInsightsSubscription,
          { context: kpi.code },
          { next: (data) => this.#insights.add([data.newInsights]), error: onError },
        ),
      );
    }
  }

  /** Stops every feed and the socket. */
  close(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#following);
    this.#live.close();
  }
}

let dashboard: Dashboard | undefined;

function signIn(token: string): void {
  view.signIn.hidden = true;
  view.signOut.hidden = false;
  dashboard = new Dashboard(token);
  void dashboard.start();
}

function signOut(reason?: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  dashboard?.close();
  dashboard = undefined;
  view.kpis.hidden = true;
  view.panels.hidden = true;
  view.signOut.hidden = true;
  view.signIn.hidden = false;
  showConnection('offline');
  showProblem(reason);
  view.tokenInput.focus();
}

view.signIn.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = view.tokenInput.value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  view.tokenInput.value = '';
  showProblem();
  signIn(token);
});
view.signOut.addEventListener('click', () => signOut());
window.addEventListener('offline', () => showConnection('offline', 'this device has no network'));

const token = takeToken();
if (token) signIn(token);
else signOut();
