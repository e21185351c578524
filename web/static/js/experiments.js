// Experiment views: the list, and one experiment with its trials.
import { api, list, settle, enc } from './api.js';
import {
  h, frag, header, table, kv, section, panel, time, badge, link, part, mono, fmtNum, num, strip, action,
} from './ui.js';

const xHref = (id) => `#/experiments/${enc(id)}`;
const modelLink = (m) => (m ? link(`#/models/${enc(m)}`, m) : '');
const running = (x) => x.state === 'EXPERIMENT_STATE_RUNNING';
const paused = (x) => x.state === 'EXPERIMENT_STATE_PAUSED';

export async function experiments(ctx) {
  const xs = (await list('/v1/experiments', 'experiments')).sort((a, b) => (b.create_time || '').localeCompare(a.create_time || ''));
  if (xs.some(running)) ctx.refresh(3000);
  return frag(
    header('Experiments', `${xs.length} total`),
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

export async function experiment(ctx) {
  const [id] = ctx.params;
  const x = (await api(`/v1/experiments/${enc(id)}`)).experiment;
  const [ts] = await settle([list(`/v1/experiments/${enc(id)}/trials`, 'trials')]);
  if (running(x)) ctx.refresh(3000);
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
    section('Trials', h('p', { class: 'muted' }, `Sorted by ${x.metric}, ${x.mode === 'min' ? 'lowest' : 'highest'} first.`), part(ts, trialTable, 'Trials')),
    section('Search space', table([
      { title: 'Parameter', cell: (p) => mono(p.name) },
      { title: 'Type', cell: (p) => strip(p.type).toLowerCase().replace('_', ' ') },
      { title: 'Range / values', cell: (p) => ((p.values || []).length ? p.values.join(', ') : `${fmtNum(p.low)} … ${fmtNum(p.high)}`) },
      { title: 'When', cell: (p) => (p.condition ? `${p.condition.parent} ∈ {${(p.condition.values || []).join(', ')}}` : '') },
    ], params, { empty: 'No parameters: the template is trained as is.' })));
}
