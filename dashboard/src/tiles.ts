// One tile per KPI: its name, unit, live value and a uPlot sparkline of the last hour from `series`.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { element } from './dom.ts';
import type { DashboardQuery } from './gql/graphql.ts';

/** A KPI as the dashboard query returns it. */
export type KpiSnapshot = DashboardQuery['kpis'][number];

const SPARK_HEIGHT = 48;
const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

/** How a value reads on a tile: grouped digits, at most two decimals, a dash when undefined. */
export function formatValue(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : numberFormat.format(value);
}

/** A KPI's tile; `update` takes live values, `setSeries` the last hour. */
export class KpiTile {
  readonly element: HTMLElement;
  readonly #value: HTMLElement;
  readonly #updated: HTMLElement;
  readonly #spark: HTMLElement;
  readonly #name: string;
  readonly #window: string;
  #at = 0;
  #definedPoints = 0;
  #plot: uPlot | undefined;
  #resize: ResizeObserver | undefined;

  constructor(kpi: KpiSnapshot) {
    this.#name = kpi.name;
    this.#window = kpi.window;
    const titleId = `kpi-${kpi.code.replace(/[^\w-]/g, '-')}`;
    this.element = element('article', 'tile');
    this.element.dataset['kpi'] = kpi.code;
    this.element.setAttribute('aria-labelledby', titleId);
    const title = element('h3', 'tile-name', kpi.name);
    title.id = titleId;
    const reading = element('p', 'tile-reading');
    this.#value = element('span', 'tile-value', '–');
    this.#value.dataset['value'] = '';
    reading.append(this.#value);
    if (kpi.unit) reading.append(' ', element('span', 'tile-unit', kpi.unit));
    this.#updated = element('p', 'tile-meta', `over ${kpi.window}`);
    this.#spark = element('figure', 'tile-spark');
    this.#spark.setAttribute('role', 'img');
    this.element.append(title, reading, this.#updated, this.#spark);
    this.element.title = kpi.code;
    if (kpi.current) this.update(kpi.current.value, kpi.current.at);
    this.setSeries(kpi.series);
  }

  /** Shows a value unless a newer one is already shown (a snapshot may arrive after a live value). */
  update(value: number | null, at: string): void {
    const time = Date.parse(at);
    if (time < this.#at) return;
    this.#at = time;
    this.#value.textContent = formatValue(value);
    this.#value.dataset['value'] = value === null ? '' : String(value);
    this.#updated.textContent = `over ${this.#window} · updated ${timeFormat.format(new Date(at))}`;
    // A short highlight says "this changed" without moving anything.
    this.element.classList.remove('changed');
    void this.element.offsetWidth;
    this.element.classList.add('changed');
  }

  /** Draws the last hour's buckets (uPlot: x in seconds). */
  setSeries(points: readonly { value: number | null; at: string }[]): void {
    const xs = points.map((p) => Date.parse(p.at) / 1000);
    const ys = points.map((p) => p.value);
    const defined = ys.filter((y): y is number => y !== null);
    this.#definedPoints = defined.length;
    this.#spark.setAttribute(
      'aria-label',
      defined.length
        ? `${this.#name}, last hour: from ${formatValue(defined[0])} to ${formatValue(defined.at(-1))}, ` +
            `between ${formatValue(Math.min(...defined))} and ${formatValue(Math.max(...defined))}`
        : `${this.#name}: no values in the last hour`,
    );
    if (this.#plot) {
      this.#plot.setData([xs, ys]);
      return;
    }
    this.#plot = new uPlot(
      {
        width: Math.max(120, this.#spark.clientWidth || 220),
        height: SPARK_HEIGHT,
        pxAlign: false,
        cursor: { show: false },
        legend: { show: false },
        select: { show: false, left: 0, top: 0, width: 0, height: 0 },
        scales: { x: { time: true } },
        axes: [{ show: false }, { show: false }],
        series: [
          {},
          {
            stroke: '#2563eb',
            fill: 'rgba(37, 99, 235, 0.12)',
            width: 1.5,
            spanGaps: true,
            // A KPI with a value in one or two minutes only draws no line: show those as dots.
            points: { show: () => this.#definedPoints < 3, size: 5 },
          },
        ],
      },
      [xs, ys],
      this.#spark,
    );
    this.#resize = new ResizeObserver(() => {
      if (this.#spark.clientWidth > 0)
        this.#plot?.setSize({ width: this.#spark.clientWidth, height: SPARK_HEIGHT });
    });
    this.#resize.observe(this.#spark);
  }

  /** Frees the chart. */
  destroy(): void {
    this.#resize?.disconnect();
    this.#plot?.destroy();
    this.element.remove();
  }
}
