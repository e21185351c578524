// Training curves: a job's metrics samples (GET /v1/jobs/{id}/metrics),
// read once and then only what is new, and turned into chart series.
import { api, enc } from './api.js';
import { h } from './ui.js';
import { LineChart, chartGrid, chartId } from './charts.js';

// samples holds, per job, the samples read so far and the token that
// reads the ones stored after them; a job that has ended is read no more.
const samples = new Map();
const MAX_CACHED = 200;

// PAGES bounds one read (at 1000 samples a page) so that a huge job
// cannot stall a page; the rest comes with the next refresh.
const PAGES = 20;

// jobSamples returns every metrics sample of job id: the cached ones and
// what was stored since. done says the job has ended (one more read
// then fetches what it reported last, and the cache is final).
export async function jobSamples(id, done = false) {
  let c = samples.get(id);
  if (c?.final) return c.list;
  if (!c) {
    c = { list: [], token: '', final: false };
    if (samples.size >= MAX_CACHED) samples.delete(samples.keys().next().value);
    samples.set(id, c);
  }
  for (let i = 0; i < PAGES; i++) {
    const q = `page_size=1000${c.token ? `&page_token=${enc(c.token)}` : ''}`;
    const r = await api(`/v1/jobs/${enc(id)}/metrics?${q}`);
    c.list.push(...(r.samples || []));
    c.token = r.next_page_token || r.resume_token || c.token;
    if (!r.next_page_token) {
      c.final = done;
      break;
    }
  }
  return c.list;
}

const SPLIT_ORDER = ['train', 'validation', 'test', ''];
const splitRank = (s) => { const i = SPLIT_ORDER.indexOf(s); return i < 0 ? SPLIT_ORDER.length : i; };

// curves groups per-step samples of rank 0 by metric name, and each
// metric by split: Map(name -> [{label: split, points: [[step, value]]}]).
// A later sample of a step (a restarted attempt) replaces an earlier one.
export function curves(list) {
  const by = new Map();
  for (const s of list) {
    if (s.final || !s.has_step || (s.rank || 0) !== 0) continue;
    const step = Number(s.step || 0);
    for (const [name, v] of Object.entries(s.values || {})) {
      if (!by.has(name)) by.set(name, new Map());
      const splits = by.get(name);
      const split = s.split || '';
      if (!splits.has(split)) splits.set(split, new Map());
      splits.get(split).set(step, Number(v));
    }
  }
  const out = new Map();
  const names = [...by.keys()].sort((a, b) => (a === 'loss' ? -1 : b === 'loss' ? 1 : a.localeCompare(b)));
  for (const name of names) {
    const splits = [...by.get(name).entries()].sort(([a], [b]) => splitRank(a) - splitRank(b) || a.localeCompare(b));
    out.set(name, splits.map(([split, pts]) => ({
      label: split || name,
      points: [...pts.entries()].sort((a, b) => a[0] - b[0]),
      dash: split === 'validation',
    })));
  }
  return out;
}

// curveOf picks one trial's curve for an objective: the metric it names
// (validation_loss is split validation, name loss) when reported per
// step, else the validation loss, else the train loss.
export function curveOf(list, objective) {
  const c = curves(list);
  const want = [];
  const m = /^(train|validation|test)_(.+)$/.exec(objective || '');
  if (m) want.push([m[2], m[1]]);
  want.push([objective, ''], ['loss', 'validation'], ['loss', 'train']);
  for (const [name, split] of want) {
    const s = (c.get(name) || []).find((x) => x.label === (split || name));
    if (s?.points.length) return { metric: split ? `${split}_${name}` : name, points: s.points };
  }
  return { metric: '', points: [] };
}

// charts of a job page, kept across its refreshes so that a running job's
// curves grow in place.
const jobCharts = new Map();

// jobCurves is the section of a job's page with one chart per metric,
// a series per split; live says the page refreshes.
export async function jobCurves(id, live) {
  const list = await jobSamples(id, !live);
  const cs = curves(list);
  let kept = jobCharts.get(id);
  if (!kept) {
    jobCharts.clear();
    kept = new Map();
    jobCharts.set(id, kept);
  }
  const nodes = [];
  for (const [name, series] of cs) {
    let chart = kept.get(name);
    if (!chart) {
      chart = new LineChart({ id: chartId(name), title: name, x: 'step', y: name });
      kept.set(name, chart);
    }
    chart.set(series);
    nodes.push(chart.el);
  }
  const steps = list.filter((s) => s.has_step && !s.final).length;
  return h('div', { id: 'curves', dataset: { samples: String(list.length) } },
    nodes.length ? chartGrid(...nodes)
      : h('p', { class: 'muted' }, live ? 'No per-step metrics reported yet.' : 'No per-step metrics reported.'),
    h('p', { class: 'muted' }, `${steps} per-step samples${live ? ', updating as the job reports more' : ''}.`));
}
