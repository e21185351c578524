// A deployment's monitoring: its windows
// (GET /v1/deployments/{name}/monitoring) as charts over time (traffic,
// latency, ready replicas, drift per column, data quality, live
// performance), with the alerts of its rules marked where they went
// pending, fired and resolved.
import { api, list, settle, enc } from './api.js';
import { h, table, badge, link, mono, fmtNum, num, empty, errorBox, time } from './ui.js';
import { LineChart, chartGrid } from './charts.js';

// RANGES are the spans of time a deployment page can show.
export const RANGES = [['15m', 15], ['1h', 60], ['6h', 360], ['24h', 1440]];
export const rangeMinutes = (r) => (RANGES.find(([k]) => k === r) || RANGES[1])[1];

const secs = (ts) => Date.parse(ts) / 1000;

// windowsOf reads the deployment's windows that end after since, oldest
// first.
export async function windowsOf(name, minutes) {
  const since = new Date(Date.now() - minutes * 60000).toISOString();
  const r = await api(`/v1/deployments/${enc(name)}/monitoring?since=${enc(since)}&page_size=1000`);
  return [...(r.windows || [])].sort((a, b) => secs(a.start_time) - secs(b.start_time));
}

// CHARTS are the charts of a deployment page, in order: DOM id suffix,
// title, y axis.
const CHARTS = [
  ['traffic', 'Traffic', 'per window'],
  ['latency', 'Latency', 'seconds'],
  ['replicas', 'Ready replicas', 'replicas'],
  ['drift', 'Drift score per column', 'score'],
  ['quality', 'Data quality', 'share of values'],
  ['performance', 'Live performance', 'metric'],
];

// isRegressor: the labelled windows score RMSE or MAE (a classifier's
// windows have accuracy, F1 and AUC instead).
const isRegressor = (labelled) => labelled.some((w) => w.performance?.rmse !== undefined || w.performance?.mae !== undefined)
  && !labelled.some((w) => w.performance?.accuracy !== undefined);

// windowSeries turns windows into each chart's series (x = the window's
// start, in seconds): what the page draws and the tests compare with the
// API.
export function windowSeries(ws) {
  const pts = (f, from = ws) => from.map((w) => [secs(w.start_time), f(w)]);
  const columns = [...new Set(ws.flatMap((w) => (w.drift || []).map((d) => d.column)))];
  const drifted = ws.filter((w) => (w.drift || []).some((d) => d.drifted));
  const labelled = ws.filter((w) => num(w.performance?.labelled_rows) > 0);
  const perf = isRegressor(labelled) ? ['rmse', 'mae'] : ['accuracy', 'f1', 'auc'];
  const out = {
    traffic: [
      { label: 'requests', points: pts((w) => num(w.requests)) },
      { label: 'errors', points: pts((w) => num(w.errors)) },
    ],
    latency: ['p50', 'p95', 'p99'].map((p) => ({ label: p, points: pts((w) => num(w[`latency_${p}_seconds`])) })),
    replicas: [{ label: 'ready replicas', style: 'step', points: pts((w) => num(w.ready_replicas)) }],
    drift: [
      ...columns.map((c) => ({
        label: c,
        points: ws.filter((w) => (w.drift || []).some((d) => d.column === c))
          .map((w) => [secs(w.start_time), num(w.drift.find((d) => d.column === c).score)]),
      })),
      // The drifted windows, at the largest score of a column that drifted.
      { label: 'drifted', style: 'points', colour: '#b42318',
        points: pts((w) => Math.max(...w.drift.filter((d) => d.drifted).map((d) => num(d.score))), drifted) },
    ],
    quality: ['missing_rate', 'out_of_range_rate', 'unseen_category_rate'].map((k) => ({
      label: k, points: pts((w) => num(w.quality?.[k])),
    })),
    performance: labelled.length ? perf.map((k) => ({ label: k, points: pts((w) => num(w.performance[k]), labelled) })) : [],
  };
  if (!drifted.length) out.drift.pop();
  return out;
}

// alertMarkers marks each alert's moves: pending, firing, resolved.
export function alertMarkers(alerts) {
  const out = [];
  for (const a of alerts) {
    for (const [field, tone] of [['pending_time', 'pending'], ['firing_time', 'firing'], ['resolved_time', 'resolved']]) {
      if (a[field]) out.push({ x: secs(a[field]), label: `${a.rule} ${tone}`, tone });
    }
  }
  return out.sort((a, b) => a.x - b.x || a.label.localeCompare(b.label));
}

// Charts of the deployment page on screen, kept across its redraws so
// that they update in place.
const kept = { name: '', charts: new Map() };

function chartsOf(name) {
  if (kept.name !== name) {
    kept.name = name;
    kept.charts = new Map();
  }
  return kept.charts;
}

// ruleText is a rule's condition as the CLI writes it.
export const COMPARISONS = { COMPARISON_GREATER: '>', COMPARISON_GREATER_OR_EQUAL: '>=', COMPARISON_LESS: '<', COMPARISON_LESS_OR_EQUAL: '<=' };
export function ruleText(r) {
  const series = r.column ? `${r.series}{${r.column}}` : r.series;
  const dur = r.for && r.for !== '0s' ? ` for ${r.for}` : '';
  return `${series} ${COMPARISONS[r.comparison] || '?'} ${fmtNum(r.threshold ?? 0)}${dur}`;
}

// monitorSection is the monitoring part of a deployment page: the charts
// over the chosen range, the last window's drift per column and the
// deployment's alert rules.
export async function monitorSection(name, minutes) {
  const [ws, rules, alerts] = await settle([
    windowsOf(name, minutes),
    list('/v1/alert-rules', 'rules', 1000),
    list('/v1/alerts', 'alerts', 200),
  ]);
  if (!ws.ok) return errorBox(ws.error, 'Monitoring');
  const mine = alerts.ok ? alerts.value.filter((a) => a.deployment === name) : [];
  const series = windowSeries(ws.value);
  const markers = alertMarkers(mine);
  const charts = chartsOf(name);
  const nodes = CHARTS.map(([key, title, y]) => {
    let c = charts.get(key);
    if (!c) {
      c = new LineChart({ id: `chart-${key}`, title, x: 'time', y, note: key === 'performance' ? 'windows with feedback' : undefined });
      charts.set(key, c);
    }
    c.set(series[key], markers);
    return c.el;
  });
  const last = ws.value[ws.value.length - 1];
  const myRules = rules.ok ? rules.value.filter((r) => r.deployment === name) : [];
  return h('div', { id: 'monitoring', dataset: { windows: String(ws.value.length) } },
    ws.value.length ? null : empty('No monitoring windows in this range.', 'Windows come from the payload log: create the deployment with payload logging (`bmaas deploy create --log-payloads`).'),
    chartGrid(...nodes),
    last ? h('h3', {}, 'Drift of the last window ', time(last.start_time)) : null,
    last ? table([
      { title: 'Column', cell: (d) => d.column },
      { title: 'Test', cell: (d) => d.test || '' },
      { title: 'Score', num: true, cell: (d) => fmtNum(d.score ?? 0) },
      { title: 'p-value', num: true, cell: (d) => (d.p_value !== undefined ? fmtNum(d.p_value) : '') },
      { title: 'PSI', num: true, cell: (d) => fmtNum(d.psi ?? 0) },
      { title: 'Mean / training', num: true, cell: (d) => `${fmtNum(d.mean ?? 0)} / ${fmtNum(d.train_mean ?? 0)}` },
      { title: 'Drifted', cell: (d) => h('span', { class: `badge ${d.drifted ? 'bad' : 'ok'}` }, d.drifted ? 'drifted' : 'no') },
    ], last.drift || [], { id: 'drift-columns', empty: 'No drift measured (the version has no training statistics, or the window had too few rows).' }) : null,
    h('h3', {}, 'Alert rules'),
    rules.ok ? table([
      { title: 'Rule', cell: (r) => link(`#/alerts?rule=${enc(r.name)}`, r.name) },
      { title: 'Condition', cell: (r) => mono(ruleText(r)) },
      { title: 'State', cell: (r) => alertBadge(r.state) },
      { title: 'Value', num: true, cell: (r) => fmtNum(r.value ?? 0) },
      { title: 'Alert', cell: (r) => (r.alert ? link(`#/alerts/${enc(r.alert)}`, r.alert, { class: 'mono' }) : '') },
    ], myRules, { id: 'dep-rules', empty: 'No alert rules watch this deployment.', hint: 'Add one on the Alerts page.' }) : errorBox(rules.error, 'Alert rules'));
}

const ALERT_TONES = { ALERT_STATE_FIRING: 'bad', ALERT_STATE_PENDING: 'warn', ALERT_STATE_RESOLVED: 'ok', ALERT_STATE_INACTIVE: '' };

// alertBadge shows a rule's or alert's state.
export function alertBadge(state) {
  const s = state || 'ALERT_STATE_INACTIVE';
  return h('span', { class: `badge ${ALERT_TONES[s] ?? ''}` }, s.replace('ALERT_STATE_', '').toLowerCase());
}
