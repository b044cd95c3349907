// Reports and the progress of their latest generation: the dashboard query's state, then each
// `reportProgress` event.
import { element } from './dom.ts';
import type { DashboardQuery, ReportProgressSubscription } from './gql/graphql.ts';

/** A report as the dashboard query returns it. */
export type ReportSnapshot = DashboardQuery['reports'][number];
type Progress = ReportProgressSubscription['reportProgress'];

/** The reports list: one row with a progress bar per report. */
export class ReportList {
  readonly element: HTMLElement;
  readonly #list: HTMLUListElement;
  readonly #rows = new Map<string, { bar: HTMLProgressElement; status: HTMLElement }>();

  constructor() {
    this.element = element('section', 'panel');
    this.element.setAttribute('aria-labelledby', 'reports-title');
    const title = element('h2', 'panel-title', 'Reports');
    title.id = 'reports-title';
    this.#list = element('ul', 'reports');
    this.element.append(title, this.#list);
    this.reset([]);
  }

  /** Shows these reports with their last run's state. */
  reset(reports: readonly ReportSnapshot[]): void {
    this.#rows.clear();
    if (reports.length === 0) {
      this.#list.replaceChildren(element('li', 'empty', 'No reports defined.'));
      return;
    }
    this.#list.replaceChildren(
      ...reports.map((report) => {
        const item = element('li', 'report');
        item.dataset['report'] = report.id;
        const labelId = `report-${report.id}`;
        const name = element('span', 'report-name', report.name);
        name.id = labelId;
        const bar = element('progress', 'report-bar');
        bar.max = 1;
        bar.setAttribute('aria-labelledby', labelId);
        const status = element('span', 'report-status');
        item.append(name, bar, status);
        this.#rows.set(report.id, { bar, status });
        const run = report.lastRun;
        this.#show(report.id, run ? run.status : 'never run', run?.progress ?? 0);
        return item;
      }),
    );
  }

  /** Applies a progress event. */
  progress(event: Progress): void {
    this.#show(event.reportId, event.status, event.progress, event.message);
  }

  #show(id: string, status: string, progress: number, message?: string | null): void {
    const row = this.#rows.get(id);
    if (!row) return;
    row.bar.value = progress;
    row.bar.textContent = `${Math.round(progress * 100)} %`;
    const percent = status === 'RUNNING' ? ` ${Math.round(progress * 100)} %` : '';
    row.status.textContent = `${status.toLowerCase()}${percent}${message ? `: ${message}` : ''}`;
  }
}
