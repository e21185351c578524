// Experiment views: the list, and one experiment with its trials and
// their charts (the objective over time, each trial's curve, and the
// hyperparameters against the objective).
import { api, list, settle, enc, project, inProject } from './api.js';
import {
  h, frag, header, table, kv, section, panel, time, badge, link, part, mono, fmtNum, num, strip, action, errorBox,
} from './ui.js';
import { lineChart, chartGrid, parallelCoordinates } from './charts.js';
import { jobSamples, curveOf } from './curves.js';

const xHref = (id) => `#/experiments/${enc(id)}`;
const modelLink = (m) => (m ? link(`#/models/${enc(m)}`, m) : '');
const running = (x) => x.state === 'EXPERIMENT_STATE_RUNNING';
const paused = (x) => x.state === 'EXPERIMENT_STATE_PAUSED';

// experiments lists the experiments of the project chosen in the header
// (all the projects the identity sees when none is).
export async function experiments(ctx) {
  const proj = project.get();
  const xs = (await list(`/v1/experiments${inProject()}`, 'experiments')).sort((a, b) => (b.create_time || '').localeCompare(a.create_time || ''));
  ctx.watch('experiment');
  return frag(
    header('Experiments', `${xs.length} total${proj ? ` in project ${proj}` : ''}`),
    table([
      { title: 'ID', cell: (x) => link(xHref(x.id), x.id, { class: 'mono' }) },
      { title: 'Name', cell: (x) => (x.name && x.name !== x.id ? x.name : '') },
      { title: 'Model', cell: (x) => modelLink(x.model) },
      { title: 'Searcher', cell: (x) => x.searcher },
      { title: 'Objective', cell: (x) => `${x.mode || 'max'} ${x.metric}` },
      { title: 'State', cell: (x) => badge(x.state, x.message) },
      { title: 'Trials', num: true, cell: (x) => `${x.trials_completed || 0} / ${x.max_trials || x.trials_created || 0}` },
      { title: 'Best', num: true, cell: (x) => (x.best_trial_id ? fmtNum(x.best_value) : '') },
      { title: 'Created', cell: (x) => time(x.create_time) },
    ], xs, { id: 'experiments', empty: 'No experiments yet.', hint: 'Start one with `bmaas experiment create -f SPEC.yaml`.' }));
}

// sortTrials orders trials by the objective, best first; trials without a
// value go last, by sequence.
export function sortTrials(trials, mode) {
  const sign = mode === 'min' ? 1 : -1;
  return [...trials].sort((a, b) => {
    if (a.has_value !== b.has_value) return a.has_value ? -1 : 1;
    if (a.has_value) { const d = sign * (num(a.value) - num(b.value)); if (d) return d; }
    return num(a.seq) - num(b.seq);
  });
}

const ENDED = ['TRIAL_STATE_SUCCEEDED', 'TRIAL_STATE_STOPPED', 'TRIAL_STATE_FAILED', 'TRIAL_STATE_CANCELLED'];

// MAX_CURVES bounds the trials whose curves a page reads (the newest).
const MAX_CURVES = 40;

const seconds = (ts) => new Date(ts).getTime() / 1000;

// objectivePoints is each valued trial's objective at the time it was
// reported (finished: trial id → seconds, the time of its last metrics
// sample; else its update time), oldest first, and the best so far (by
// mode) at each.
export function objectivePoints(trials, mode, finished = new Map()) {
  const done = trials.filter((t) => t.has_value && (finished.has(t.id) || t.update_time))
    .map((t) => ({ id: t.id, x: finished.get(t.id) ?? seconds(t.update_time), y: num(t.value) }))
    .sort((a, b) => a.x - b.x);
  const better = (a, b) => (mode === 'min' ? a < b : a > b);
  let best = null;
  const bestPts = done.map((p) => {
    if (best === null || better(p.y, best)) best = p.y;
    return [p.x, best];
  });
  return { trials: done, values: done.map((p) => [p.x, p.y]), best: bestPts };
}

// trialCharts draws the objective over time, the trials' curves and a
// parallel-coordinates plot of their parameters against the objective.
async function trialCharts(x, trials) {
  const metric = x.metric || 'value';
  const mode = x.mode === 'min' ? 'min' : 'max';
  const recent = [...trials].sort((a, b) => num(a.seq) - num(b.seq) || (a.create_time || '').localeCompare(b.create_time || '')).slice(-MAX_CURVES);
  const read = await settle(recent.map(async (t) => {
    const jobs = (t.job_ids || []).length ? t.job_ids : (t.job_id ? [t.job_id] : []);
    const lists = [];
    for (const [i, jid] of jobs.entries()) lists.push(...await jobSamples(jid, ENDED.includes(t.state) || i < jobs.length - 1));
    const last = lists.reduce((m, s) => Math.max(m, s.time ? seconds(s.time) : 0), 0);
    return { t, curve: curveOf(lists, metric), last };
  }));
  const got = read.filter((r) => r.ok).map((r) => r.value);
  const failed = read.find((r) => !r.ok);
  const finished = new Map(got.filter((r) => r.last > 0 && r.t.has_value).map((r) => [r.t.id, r.last]));

  const obj = objectivePoints(trials, mode, finished);
  const overTime = lineChart({ id: 'chart-objective', title: `${metric} over time`, x: 'time', y: metric, note: `each trial when it reported, the ${mode === 'min' ? 'lowest' : 'highest'} so far as a line` },
    [{ label: metric, points: obj.values, style: 'points' }, { label: `best ${metric}`, points: obj.best, style: 'step', colour: '#1b7f4c' }]);

  const drawn = got.filter((r) => r.curve.points.length);
  const names = [...new Set(drawn.map((r) => r.curve.metric))];
  const curveChart = lineChart({ id: 'chart-trial-curves', title: `Trial curves${names.length ? ` (${names.join(', ')})` : ''}`, x: 'step', y: names.join(', ') },
    drawn.map((r) => ({ label: r.t.id, points: r.curve.points })));

  const params = [...new Set([...(x.params || []).map((p) => p.name), ...trials.flatMap((t) => Object.keys(t.params || {}))])];
  const rows = trials.filter((t) => t.has_value).map((t) => ({ id: t.id, values: { ...t.params, [metric]: num(t.value) } }));
  const best = x.best_trial_id || (rows.length ? rows.reduce((a, b) => ((mode === 'min' ? b.values[metric] < a.values[metric] : b.values[metric] > a.values[metric]) ? b : a)).id : '');
  const par = rows.length
    ? parallelCoordinates({ id: 'chart-params', title: 'Hyperparameters against the objective', note: `darker is better ${metric}, the best trial thickest`,
      axes: [...params, metric], rows, colourBy: metric, mode, highlight: best })
    : h('figure', { class: 'chart wide', id: 'chart-params' }, h('figcaption', {}, 'Hyperparameters against the objective'), h('p', { class: 'muted' }, 'No trial has a value yet.'));
  return [chartGrid(overTime, curveChart, par), failed ? errorBox(failed.error, 'Trial curves') : null];
}

export async function experiment(ctx) {
  const [id] = ctx.params;
  const x = (await api(`/v1/experiments/${enc(id)}`)).experiment;
  const [ts] = await settle([list(`/v1/experiments/${enc(id)}/trials`, 'trials')]);
  ctx.watch('experiment', 'job');
  if (running(x)) ctx.refresh(3000); // trial curves come without an event
  const tpl = x.template || {};
  const params = x.params || [];
  const trialTable = (trials) => {
    const sorted = sortTrials(trials, x.mode);
    const best = x.best_trial_id || sorted.find((t) => t.has_value)?.id;
    const names = [...new Set([...params.map((p) => p.name), ...trials.flatMap((t) => Object.keys(t.params || {}))])];
    return table([
      { title: 'Trial', cell: (t) => [mono(t.id), t.id === best ? h('span', { class: 'badge ok', title: 'best trial' }, ' best') : ''] },
      { title: 'State', cell: (t) => badge(t.state, t.message) },
      ...names.map((n) => ({ title: n, name: true, cell: (t) => mono(t.params?.[n] ?? '') })),
      { title: x.metric || 'value', name: true, num: true, cell: (t) => (t.has_value ? fmtNum(t.value, 6) : '') },
      { title: 'Epochs', num: true, cell: (t) => (t.target_epochs ? `${t.epochs || 0} / ${t.target_epochs}` : '') },
      { title: 'Rung', num: true, cell: (t) => (t.rung ? String(t.rung) : '') },
      { title: 'Job', cell: (t) => (t.job_id ? link(`#/jobs/${enc(t.job_id)}`, t.job_id, { class: 'mono' }) : '') },
      { title: 'Version', cell: (t) => (num(t.model_version) ? link(`#/models/${enc(x.model)}/versions/${t.model_version}`, `v${t.model_version}`) : '') },
      { title: 'Note', cell: (t) => t.message || '' },
    ], sorted, { id: 'trials', empty: 'No trials yet.', rowClass: (t) => (t.id === best ? 'best' : null), rowData: (t) => ({ trial: t.id }) });
  };
  const out = h('div');
  const verb = (v) => () => api(`/v1/experiments/${enc(id)}:${v}`, { method: 'POST', body: {} });
  const acts = [];
  if (running(x)) acts.push(action('x-pause', 'Pause', out, verb('pause'), ctx));
  if (paused(x)) acts.push(action('x-resume', 'Resume', out, verb('resume'), ctx, 'btn primary'));
  if (running(x) || paused(x)) acts.push(action('x-cancel', 'Cancel experiment', out, verb('cancel'), ctx, 'btn danger'));
  return frag(
    header(`Experiment ${x.name || x.id}`, `${x.searcher} on ${x.model}`, [link('#/experiments', 'Experiments')], badge(x.state, x.message)),
    acts.length ? h('div', { class: 'toolbar' }, ...acts) : null,
    out,
    panel(kv([
      ['State', [badge(x.state), x.message ? ` ${x.message}` : '']],
      ['Model', modelLink(x.model)],
      ['Objective', `${x.mode === 'min' ? 'minimise' : 'maximise'} ${x.metric}`],
      ['Best', x.best_trial_id ? `${fmtNum(x.best_value, 6)} (trial ${x.best_trial_id})` : null],
      ['Trials', `${x.trials_completed || 0} completed, ${x.trials_created || 0} created, at most ${x.max_trials || '∞'}, ${x.parallelism || 1} at a time`],
      ['Epochs', x.max_epochs ? `${x.min_epochs || 1} to ${x.max_epochs}, reduction ${x.reduction_factor || 3}, ${fmtNum(x.epochs_used)} used` : null],
      ['Training', [tpl.algorithm || tpl.process?.command || '', tpl.dataset ? [' on ', link(`#/datasets/${enc(tpl.dataset)}`, tpl.dataset)] : '']],
      ['Promote best', x.promote_best ? 'yes' : null],
      ['Created', time(x.create_time)],
      ['Completed', time(x.complete_time)],
    ])),
    section('Charts', ts.ok ? await trialCharts(x, ts.value) : null),
    section('Trials', h('p', { class: 'muted' }, `Sorted by ${x.metric}, ${x.mode === 'min' ? 'lowest' : 'highest'} first.`), part(ts, trialTable, 'Trials')),
    section('Search space', table([
      { title: 'Parameter', cell: (p) => mono(p.name) },
      { title: 'Type', cell: (p) => strip(p.type).toLowerCase().replace('_', ' ') },
      { title: 'Range / values', cell: (p) => ((p.values || []).length ? p.values.join(', ') : `${fmtNum(p.low)} … ${fmtNum(p.high)}`) },
      { title: 'When', cell: (p) => (p.condition ? `${p.condition.parent} ∈ {${(p.condition.values || []).join(', ')}}` : '') },
    ], params, { empty: 'No parameters: the template is trained as is.' })));
}
