// The latest insights, newest first: the dashboard query's, then each version `newInsights` sends
// (an insight keeps its id while its episode lasts, so a new version replaces the shown one).
import { element } from './dom.ts';
import type { InsightItemFragment } from './gql/graphql.ts';

const SHOWN = 8;
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'short' });

/** The insights list. */
export class InsightList {
  readonly element: HTMLElement;
  readonly #list: HTMLOListElement;
  readonly #insights = new Map<string, InsightItemFragment>();

  constructor() {
    this.element = element('section', 'panel');
    this.element.setAttribute('aria-labelledby', 'insights-title');
    const title = element('h2', 'panel-title', 'Latest insights');
    title.id = 'insights-title';
    this.#list = element('ol', 'insights');
    // New insights are announced politely; a screen reader hears them without losing its place.
    this.#list.setAttribute('aria-live', 'polite');
    this.element.append(title, this.#list);
    this.#render();
  }

  /** Replaces everything shown (a snapshot from the dashboard query). */
  reset(insights: readonly InsightItemFragment[]): void {
    this.#insights.clear();
    this.add(insights);
  }

  /** Adds insights, or newer versions of shown ones. */
  add(insights: readonly InsightItemFragment[]): void {
    for (const insight of insights) {
      const shown = this.#insights.get(insight.id);
      if (!shown || shown.at <= insight.at) this.#insights.set(insight.id, insight);
    }
    this.#render();
  }

  #render(): void {
    const newest = [...this.#insights.values()].sort((a, b) => b.at.localeCompare(a.at)).slice(0, SHOWN);
    if (newest.length === 0) {
      this.#list.replaceChildren(element('li', 'empty', 'Nothing noticed yet.'));
      return;
    }
    this.#list.replaceChildren(
      ...newest.map((insight) => {
        const item = element('li', `insight severity-${insight.severity.toLowerCase()}`);
        item.dataset['insight'] = insight.id;
        const badge = element('span', 'badge', insight.severity.toLowerCase());
        const status = insight.status === 'CLOSED' ? ' (closed)' : '';
        const when = element('time', 'when', timeFormat.format(new Date(insight.at)));
        when.dateTime = insight.at;
        item.append(badge, ' ', element('span', 'insight-title', `${insight.title}${status}`), ' ', when);
        return item;
      }),
    );
  }
}
