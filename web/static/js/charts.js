// Charts of the console: line charts drawn by the vendored uPlot
// (vendor/uplot, loaded by index.html as the global uPlot) and a
// parallel-coordinates plot in plain SVG, which uPlot has not. Every
// chart keeps what it plotted on its node (node.chart.plotted()), so what
// a page shows can be checked against the API it read.
import { h, fmtNum, fmtTime } from './ui.js';

// PALETTE colours series in order; a chart with more series cycles it.
export const PALETTE = ['#2f5bd3', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285', '#e67700', '#5c940d', '#364fc7', '#a61e4d'];
export const colour = (i) => PALETTE[i % PALETTE.length];

const MARKER_TONES = {
  promotion: '#1b7f4c', alias: '#2f5bd3', event: '#9a6700', pending: '#e67700', firing: '#b42318', resolved: '#1b7f4c',
};

// chartId turns a metric or other name into a DOM id: chart-<name>.
export const chartId = (name) => `chart-${String(name).toLowerCase().replace(/[^a-z0-9_-]+/g, '-')}`;

// align merges series of [x, y] points into uPlot's columns: the sorted
// union of the xs, and per series its y at each x (null where it has
// none). A later point at the same x replaces an earlier one.
export function align(series) {
  const xs = [...new Set(series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const col = new Array(xs.length).fill(null);
    for (const [x, y] of s.points) col[at.get(x)] = Number.isFinite(y) ? y : null;
    return col;
  });
  return [xs, ...ys];
}

// xAxis describes the x axis of a kind: step (integer steps), version
// (integer versions shown as vN) or time (seconds since the epoch).
function xAxis(kind) {
  const ints = { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] };
  if (kind === 'version') return { ...ints, label: 'version', values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? `v${v}` : '')) };
  if (kind === 'step') return { ...ints, label: 'step', values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? fmtNum(v) : '')) };
  return {};
}

// seriesOpts is uPlot's options for one series by its style: line (the
// default), points (a scatter) or step (a stepped line).
function seriesOpts(s, i) {
  const stroke = s.colour || colour(i);
  const o = { label: s.label, stroke, width: 2, spanGaps: true, value: (u, v) => (v == null ? '–' : fmtNum(v, 5)) };
  if (s.dash) o.dash = [6, 4];
  if (s.style === 'points') Object.assign(o, { paths: () => null, points: { show: true, size: 8, stroke, fill: stroke } });
  else if (s.style === 'step') Object.assign(o, { paths: window.uPlot.paths.stepped({ align: 1 }), points: { show: false } });
  else o.points = { show: (u, si, i0, i1) => i1 - i0 < 40 };
  return o;
}

// drawMarkers draws a vertical line and a label at each marker's x.
function drawMarkers(u, markers) {
  const { ctx, bbox } = u;
  const min = u.scales.x.min;
  const max = u.scales.x.max;
  ctx.save();
  ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  const used = new Map();
  for (const m of markers) {
    if (!(m.x >= min && m.x <= max)) continue;
    const x = Math.round(u.valToPos(m.x, 'x', true));
    const row = used.get(x) || 0;
    used.set(x, row + 1);
    ctx.strokeStyle = MARKER_TONES[m.tone] || MARKER_TONES.event;
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = devicePixelRatio;
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    // A label right of its line, or left of it near the right edge.
    const right = x + ctx.measureText(m.label).width + 6 * devicePixelRatio > bbox.left + bbox.width;
    ctx.textAlign = right ? 'right' : 'left';
    ctx.fillText(m.label, x + (right ? -3 : 3) * devicePixelRatio, bbox.top + (2 + row * 13) * devicePixelRatio);
  }
  ctx.restore();
}

// LineChart is a uPlot line chart of several series with a legend, an x
// axis of steps, versions or time, and markers for events (promotions,
// alias moves). set() replaces its data in place, so a live page keeps
// the chart (and the user's zoom) while the data grows.
export class LineChart {
  // opts: id, title, x ('step' | 'version' | 'time'), y (the y axis'
  // label), height (px), note (a line under the title).
  constructor(opts) {
    this.opts = { x: 'step', height: 220, ...opts };
    this.series = [];
    this.markers = [];
    this.plot = h('div', { class: 'chart-plot' });
    this.empty = h('p', { class: 'muted chart-empty' }, 'No data yet.');
    this.el = h('figure', { class: 'chart', id: this.opts.id },
      h('figcaption', {}, this.opts.title, this.opts.note ? h('span', { class: 'muted' }, ` · ${this.opts.note}`) : null),
      this.plot, this.empty);
    this.el.chart = this;
    this.u = null;
    this.shape = '';
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.plot);
  }

  // set draws series ([{label, points: [[x, y], ...], style, dash,
  // colour}]) and markers ([{x, label, tone}]).
  set(series, markers = []) {
    this.series = series;
    this.markers = markers;
    this.el.dataset.series = JSON.stringify(series.map((s) => ({ label: s.label, points: s.points })));
    this.el.dataset.markers = JSON.stringify(markers.map((m) => ({ x: m.x, label: m.label, tone: m.tone || 'event' })));
    const has = series.some((s) => s.points.length);
    this.empty.hidden = has;
    this.plot.hidden = !has;
    if (!has) return this;
    const data = align(series);
    const shape = JSON.stringify(series.map((s) => [s.label, s.style, s.dash, s.colour]));
    if (this.u && shape === this.shape) {
      this.u.setData(data, true);
    } else {
      this.u?.destroy();
      this.shape = shape;
      this.u = new window.uPlot(this.options(), data, this.plot);
    }
    return this;
  }

  options() {
    const o = this.opts;
    return {
      width: this.width(),
      height: o.height,
      scales: { x: { time: o.x === 'time' } },
      axes: [
        { ...xAxis(o.x), stroke: '#667085', grid: { stroke: '#eef0f3' } },
        { label: o.y, stroke: '#667085', grid: { stroke: '#eef0f3' }, size: 60, values: (u, vals) => vals.map((v) => fmtNum(v, 3)) },
      ],
      series: [
        { label: o.x, value: (u, v) => (v == null ? '–' : o.x === 'time' ? fmtTime(v * 1000) : o.x === 'version' ? `v${v}` : fmtNum(v)) },
        ...this.series.map(seriesOpts),
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: { draw: [(u) => drawMarkers(u, this.markers)] },
    };
  }

  width() {
    return Math.max(240, Math.floor(this.plot.clientWidth || this.el.clientWidth || 560));
  }

  resize() {
    if (!this.u || !this.plot.isConnected) return;
    const w = this.width();
    if (w !== this.u.width) this.u.setSize({ width: w, height: this.opts.height });
  }

  // plotted is what uPlot holds now: the x column and each series' label
  // and y column, with the markers drawn.
  plotted() {
    if (!this.u) return { x: [], series: [], markers: this.markers };
    return {
      x: [...this.u.data[0]],
      series: this.u.series.slice(1).map((s, i) => ({ label: s.label, y: [...this.u.data[i + 1]] })),
      markers: this.markers.map((m) => ({ x: m.x, label: m.label })),
    };
  }
}

// lineChart is a LineChart's node, drawn once.
export function lineChart(opts, series, markers) {
  return new LineChart(opts).set(series, markers).el;
}

// charts lays chart nodes out in a responsive grid.
export const chartGrid = (...nodes) => h('div', { class: 'charts' }, ...nodes);

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children) if (c) el.append(c);
  return el;
}

// axisScale maps an axis' values to 0 (bottom) .. 1 (top): numbers
// linearly (logarithmically when all are positive and span over two
// decades), anything else as evenly spaced categories in sorted order.
export function axisScale(values) {
  const present = values.filter((v) => v !== undefined && v !== null && v !== '');
  const nums = present.map(Number);
  if (present.length && nums.every(Number.isFinite)) {
    let lo = Math.min(...nums);
    let hi = Math.max(...nums);
    const log = lo > 0 && hi / lo > 100;
    const f = log ? Math.log10 : (v) => v;
    [lo, hi] = [f(lo), f(hi)];
    const span = hi - lo || 1;
    const at = (v) => (hi === lo ? 0.5 : (f(Number(v)) - lo) / span);
    return { kind: log ? 'log' : 'linear', at, ticks: [Math.min(...nums), Math.max(...nums)].map((v) => [at(v), fmtNum(v, 3)]) };
  }
  const cats = [...new Set(present.map(String))].sort();
  const at = (v) => (cats.length < 2 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1));
  return { kind: 'categorical', at, ticks: cats.map((c) => [at(c), c]) };
}

// parallelCoordinates draws rows ([{id, values: {axis: value}}]) across
// axes (names; the last is usually the objective), each row a line
// coloured by its value on colourBy (the best, by mode, darkest).
// highlight names a row to draw on top, thicker. Rows missing an axis'
// value cross it at the bottom, dashed.
export function parallelCoordinates({ id, title, note, axes, rows, colourBy, mode = 'max', highlight }) {
  const W = 900;
  const H = 300;
  const pad = { l: 40, r: 40, t: 34, b: 26 };
  const x = (i) => pad.l + (axes.length < 2 ? 0 : (i * (W - pad.l - pad.r)) / (axes.length - 1));
  const y = (f) => pad.t + (1 - f) * (H - pad.t - pad.b);
  const scales = axes.map((a) => axisScale(rows.map((r) => r.values[a])));
  const score = axisScale(rows.map((r) => r.values[colourBy]));
  const tone = (r) => {
    const v = r.values[colourBy];
    if (v === undefined || v === null || score.kind === 'categorical') return '#98a2b3';
    const f = mode === 'min' ? 1 - score.at(v) : score.at(v);
    const light = Math.round(78 - f * 45);
    return `hsl(222, 65%, ${light}%)`;
  };
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'parcoords', role: 'img', 'aria-label': title });
  const ordered = [...rows].sort((a, b) => (a.id === highlight) - (b.id === highlight));
  for (const r of ordered) {
    const pts = axes.map((a, i) => {
      const v = r.values[a];
      const miss = v === undefined || v === null || v === '';
      return `${x(i).toFixed(1)},${y(miss ? 0 : scales[i].at(v)).toFixed(1)}`;
    });
    const line = svg('polyline', {
      points: pts.join(' '), fill: 'none', stroke: tone(r), 'stroke-width': r.id === highlight ? 3.5 : 1.6,
      'stroke-opacity': r.id === highlight ? 1 : 0.8, class: r.id === highlight ? 'best' : null, 'data-row': r.id,
    }, svg('title', {}, document.createTextNode(`${r.id}: ${axes.map((a) => `${a}=${r.values[a] ?? '–'}`).join(', ')}`)));
    root.append(line);
  }
  axes.forEach((a, i) => {
    root.append(svg('line', { x1: x(i), x2: x(i), y1: y(0), y2: y(1), stroke: '#475467', 'stroke-width': 1 }));
    const edge = i === 0 ? 'start' : i === axes.length - 1 ? 'end' : 'middle';
    const name = svg('text', { x: x(i), y: 16, 'text-anchor': axes.length < 2 ? 'middle' : edge, class: 'axis-name' });
    name.textContent = scales[i].kind === 'log' ? `${a} (log)` : a;
    root.append(name);
    for (const [f, label] of scales[i].ticks) {
      const last = axes.length > 1 && i === axes.length - 1;
      const t = svg('text', { x: x(i) + (last ? -5 : 5), y: y(f) + 4, 'text-anchor': last ? 'end' : 'start', class: 'tick' });
      t.textContent = label;
      root.append(t);
    }
  });
  const el = h('figure', { class: 'chart wide', id },
    h('figcaption', {}, title, note ? h('span', { class: 'muted' }, ` · ${note}`) : null), root);
  el.dataset.axes = JSON.stringify(axes);
  el.dataset.rows = JSON.stringify(rows.map((r) => ({ id: r.id, values: r.values })));
  return el;
}
