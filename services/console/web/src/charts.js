// Live charts of the console's series with uPlot: one chart per series, one line per region or direction.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h } from './dom.js';

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948', '#9c755f'];

/** How each unit is shown: a label and a conversion from the value the console sends. */
const UNITS = {
  per_second: { label: 'orders/s', scale: (v) => v, digits: 2 },
  ratio: { label: '%', scale: (v) => v * 100, digits: 1 },
  s: { label: 's', scale: (v) => v, digits: 2 },
  ms: { label: 'ms', scale: (v) => v * 1000, digits: 1 },
  events: { label: 'events', scale: (v) => v, digits: 0 },
  per_minute: { label: '/min', scale: (v) => v, digits: 2 },
  requests: { label: 'requests', scale: (v) => v, digits: 0 },
  records: { label: 'records', scale: (v) => v, digits: 0 },
};

/** Latency reads better in milliseconds. */
function unitOf(series) {
  if (series.key.startsWith('latency_') || series.key.startsWith('outcome_')) return UNITS.ms;
  return UNITS[series.unit] ?? { label: series.unit, scale: (v) => v, digits: 2 };
}

const colors = new Map();
function colorOf(line) {
  if (!colors.has(line)) colors.set(line, PALETTE[colors.size % PALETTE.length]);
  return colors.get(line);
}

/** uPlot wants one x array and one y array per line, aligned; missing points are null. */
export function align(lines, scale) {
  const names = Object.keys(lines).sort();
  const times = [...new Set(names.flatMap((n) => lines[n].map(([t]) => t)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const data = [times.map((t) => t / 1000)];
  for (const name of names) {
    const ys = new Array(times.length).fill(null);
    for (const [t, v] of lines[name]) ys[index.get(t)] = scale(v);
    data.push(ys);
  }
  return { names, data };
}

export class Charts {
  /** `accept(key)` picks the series this set of charts draws. */
  constructor(container, accept = () => true) {
    this.container = container;
    this.accept = accept;
    this.charts = new Map();
    this.range = [0, 1];
    window.addEventListener('resize', () => {
      for (const chart of this.charts.values()) chart.plot?.setSize(this.size(chart.box));
    });
  }

  size(box) {
    return { width: Math.max(240, box.clientWidth - 8), height: 150 };
  }

  update(view) {
    this.range = [(view.now - view.window_seconds * 1000) / 1000, view.now / 1000];
    for (const series of view.series) if (this.accept(series.key)) this.draw(series);
  }

  draw(series) {
    let chart = this.charts.get(series.key);
    if (!chart) {
      const empty = h('p', { class: 'empty' }, 'no data yet');
      const box = h('div', { class: 'plot' });
      const latest = h('span', { class: 'latest' });
      const unit = unitOf(series);
      this.container.append(
        h(
          'figure',
          { class: 'chart', 'data-testid': `chart-${series.key}` },
          h('figcaption', {}, `${series.title} `, h('small', {}, `(${unit.label})`), latest),
          box,
          empty,
        ),
      );
      chart = { box, empty, latest, unit, plot: null, names: '' };
      this.charts.set(series.key, chart);
    }
    const { names, data } = align(series.lines, chart.unit.scale);
    const hasPoints = data[0].length > 0;
    chart.empty.hidden = hasPoints;
    // The value at the newest scrape only: a line that stopped (its service died) shows a dash.
    chart.latest.textContent = names
      .map((name, i) => {
        const newest = data[i + 1][data[0].length - 1];
        return `${name}: ${newest === null || newest === undefined ? '–' : newest.toFixed(chart.unit.digits)}`;
      })
      .join('  ');
    const key = names.join('|');
    if (chart.plot && chart.names !== key) {
      chart.plot.destroy();
      chart.plot = null;
    }
    if (!chart.plot) {
      if (!hasPoints) return;
      chart.names = key;
      chart.plot = new uPlot(this.options(names, chart), data, chart.box);
    } else {
      chart.plot.setData(data);
    }
  }

  options(names, chart) {
    return {
      ...this.size(chart.box),
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => this.range }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
      axes: [
        { stroke: '#9aa4b2', grid: { stroke: '#2a3140' } },
        { stroke: '#9aa4b2', grid: { stroke: '#2a3140' }, size: 60 },
      ],
      series: [
        {},
        ...names.map((name) => ({
          label: name,
          stroke: colorOf(name),
          width: 2,
          spanGaps: false,
          value: (u, v) => (v === null || v === undefined ? '–' : v.toFixed(chart.unit.digits)),
        })),
      ],
    };
  }
}
