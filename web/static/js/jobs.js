// Job views: the list with a state filter (refreshed while any job is
// active) and a job's page with its spec, history, training curves and a
// Cancel button.
import { api, list, enc, stream, project, inProject } from './api.js';
import {
  h, frag, header, table, kv, section, panel, time, badge, link, chips, mono,
  fmtNum, fmtBytes, fmtDuration, num, strip, cpu, json, errorBox,
} from './ui.js';
import { jobCurves } from './curves.js';
import { createForm, compact, pairs } from './forms.js';

const ACTIVE = ['JOB_STATE_QUEUED', 'JOB_STATE_SCHEDULED', 'JOB_STATE_RUNNING'];
export const active = (j) => ACTIVE.includes(j.state);
const jobHref = (id) => `#/jobs/${enc(id)}`;

// kind says what a job runs: the algorithm, the command or the deployment.
export function kind(spec = {}) {
  if (spec.builtin) return `train · ${spec.builtin.algorithm || 'builtin'}`;
  if (spec.process) return `process · ${spec.process.command || ''}`;
  if (spec.serving) return `serve · ${spec.serving.deployment || ''}`;
  return '';
}

function duration(j) {
  const start = (j.history || []).find((t) => t.state === 'JOB_STATE_RUNNING' || t.state === 'JOB_STATE_SCHEDULED')?.time;
  if (!start) return '';
  const end = active(j) ? Date.now() : new Date(j.update_time).getTime();
  return fmtDuration(end - new Date(start).getTime());
}

export function jobTable(js, emptyMsg, hint) {
  return table([
    { title: 'ID', cell: (j) => link(jobHref(j.id), j.id, { class: 'mono' }) },
    { title: 'Kind', cell: (j) => kind(j.spec) },
    { title: 'Model', cell: (j) => (j.spec?.model ? link(`#/models/${enc(j.spec.model)}`, j.spec.model) : '') },
    { title: 'State', cell: (j) => badge(j.state, j.reason) },
    { title: 'Node', cell: (j) => (j.nodes || []).join(', ') },
    { title: 'Version', cell: (j) => (num(j.model_version) && !j.spec?.serving ? link(`#/models/${enc(j.spec.model)}/versions/${j.model_version}`, `v${j.model_version}`) : '') },
    { title: 'Step', num: true, cell: (j) => (num(j.step) ? fmtNum(j.step) : '') },
    { title: 'Created', cell: (j) => time(j.create_time) },
    { title: 'Duration', num: true, cell: duration },
  ], js, { id: 'jobs', empty: emptyMsg, hint, rowData: (j) => ({ job: j.id, state: strip(j.state) }) });
}

// ALGORITHMS are the builtin runtime's.
const ALGORITHMS = ['logistic', 'linear', 'ridge', 'mlp', 'gbdt'];

// trainForm submits a builtin training job (POST /v1/jobs, the body
// being the JobSpec) and opens its page.
function trainForm() {
  return createForm({
    id: 'job-form',
    title: 'Train a model',
    fields: [
      { name: 'model', label: 'Model', placeholder: 'iris', required: true, hint: 'the new version goes to this model' },
      { name: 'algorithm', label: 'Algorithm', type: 'select', value: 'logistic', options: ALGORITHMS.map((a) => [a, a]) },
      { name: 'dataset', label: 'Dataset', placeholder: 'iris', required: true },
      { name: 'target_column', label: 'Target column', placeholder: 'empty: the last column' },
      { name: 'hyperparameters', label: 'Hyperparameters', placeholder: 'epochs=20, lr=0.01' },
    ],
    submit: (v) => api('/v1/jobs', { method: 'POST', body: compact({
      model: v.model,
      builtin: { algorithm: v.algorithm, dataset: v.dataset, target_column: v.target_column, hyperparameters: pairs(v.hyperparameters, 'spec.builtin.hyperparameters') },
    }) }),
    done: (r) => { if (r.job?.id) location.hash = jobHref(r.job.id); },
  });
}

const FILTERS = [['', 'All states'], ['active', 'Active'], ...['QUEUED', 'SCHEDULED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'].map((s) => [s, s.toLowerCase()])];
const KINDS = [['', 'All kinds'], ['train', 'Training'], ['process', 'Process'], ['serve', 'Serving']];

// jobs lists the jobs of the project chosen in the header (all the
// projects the identity sees when none is).
export async function jobs(ctx) {
  const all = await list(`/v1/jobs${inProject()}`, 'jobs');
  const proj = project.get();
  const st = ctx.query.get('state') || '';
  const kd = ctx.query.get('kind') || '';
  const q = (ctx.query.get('q') || '').toLowerCase();
  ctx.watch('job');
  // Steps and durations move without an event.
  if (all.some(active)) ctx.refresh(10000);
  const shown = all.filter((j) => {
    if (st === 'active' ? !active(j) : st && strip(j.state) !== st) return false;
    if (kd && !kind(j.spec).startsWith(kd)) return false;
    return !q || [j.id, j.spec?.model, j.spec?.name, ...(j.nodes || [])].some((s) => s && s.toLowerCase().includes(q));
  }).sort((a, b) => (b.create_time || '').localeCompare(a.create_time || ''));
  const go = (key, value) => {
    const p = new URLSearchParams(ctx.query);
    if (value) p.set(key, value); else p.delete(key);
    const s = p.toString();
    location.hash = `#/jobs${s ? `?${s}` : ''}`;
  };
  const select = (id, key, opts, cur) => h('select', { id, onchange: (e) => go(key, e.target.value) },
    opts.map(([v, t]) => h('option', { value: v, selected: v === cur }, t)));
  const search = h('input', { type: 'search', id: 'job-search', placeholder: 'id, model, node', value: q || null,
    onchange: (e) => go('q', e.target.value.trim()) });
  const running = all.filter(active).length;
  return frag(
    header('Jobs', `${all.length} total, ${running} active${proj ? ` in project ${proj}` : ''}`),
    trainForm(),
    h('div', { class: 'toolbar' }, select('job-state', 'state', FILTERS, st), select('job-kind', 'kind', KINDS, kd), search,
      h('span', { class: 'muted' }, `${shown.length} shown`)),
    jobTable(shown, all.length ? 'No job matches the filter.' : 'No jobs yet.', all.length ? null : 'Submit one with `bmaas train`.'));
}

let confirming = '';

// LOG_LINES is how many of a job's last log lines its page shows.
const LOG_LINES = 500;

// logs is the job's last log lines, or the error that kept them away.
async function logs(id) {
  let lines;
  try {
    lines = (await stream(`/v1/jobs/${enc(id)}/logs?tail_lines=${LOG_LINES}`)).flatMap((r) => r.lines || []);
  } catch (e) {
    return errorBox(e, 'Logs');
  }
  if (!lines.length) return h('p', { class: 'muted', id: 'logs' }, 'No log lines.');
  return h('pre', { class: 'json logs', id: 'logs' }, lines.join('\n'));
}

export async function job(ctx) {
  const [id] = ctx.params;
  const [j, logView] = await Promise.all([api(`/v1/jobs/${enc(id)}`).then((r) => r.job), logs(id)]);
  const spec = j.spec || {};
  const live = active(j);
  ctx.watch('job');
  if (live) ctx.refresh(2000); // curves and logs come without an event
  const curveView = await jobCurves(id, live).catch((e) => errorBox(e, 'Training curves'));
  const res = spec.resources || {};
  const rt = spec.builtin || spec.process || spec.serving || {};
  const hist = [...(j.history || [])];
  const metrics = Object.entries(j.metrics || {}).sort(([a], [b]) => a.localeCompare(b));
  const cancelErr = h('div');
  const cancel = async (btn) => {
    btn.disabled = true;
    try {
      await api(`/v1/jobs/${enc(id)}:cancel`, { method: 'POST', body: { reason: 'cancelled from the console' } });
      confirming = '';
      ctx.rerender();
    } catch (e) {
      btn.disabled = false;
      cancelErr.replaceChildren(errorBox(e, 'Cancel'));
    }
  };
  let actions = null;
  if (live && confirming === id) {
    actions = h('span', { class: 'confirm' }, 'Cancel this job?',
      h('button', { class: 'btn danger', id: 'cancel-confirm', type: 'button', onclick: (e) => cancel(e.target) }, 'Yes, cancel'),
      h('button', { class: 'btn', id: 'cancel-keep', type: 'button', onclick: () => { confirming = ''; ctx.rerender(); } }, 'Keep running'));
  } else if (live) {
    actions = h('button', { class: 'btn', id: 'cancel', type: 'button', onclick: () => { confirming = id; ctx.rerender(); } }, 'Cancel job');
  }
  return frag(
    header(`Job ${j.id}`, spec.name || kind(spec), [link('#/jobs', 'Jobs')], h('span', { id: 'job-state' }, badge(j.state))),
    actions ? h('div', { class: 'toolbar' }, actions) : null,
    cancelErr,
    panel(kv([
      ['State', [badge(j.state), j.reason ? ` ${j.reason}` : '']],
      ['Kind', kind(spec)],
      ['Model', spec.model ? link(`#/models/${enc(spec.model)}`, spec.model) : null],
      ['Version', num(j.model_version) ? link(`#/models/${enc(spec.model)}/versions/${j.model_version}`, `v${j.model_version}`) : null],
      ['Deployment', spec.serving ? link(`#/deployments/${enc(spec.serving.deployment)}`, spec.serving.deployment) : null],
      ['Dataset', rt.dataset ? [link(`#/datasets/${enc(rt.dataset)}`, rt.dataset), num(rt.dataset_version) ? ` v${rt.dataset_version}` : ''] : null],
      ['Nodes', (j.nodes || []).length ? j.nodes.map((n) => h('span', { class: 'chip' }, n)) : 'not placed'],
      ['Resources', `${cpu(res.cpu_millis)}, ${fmtBytes(res.memory_bytes)}${num(res.gpus) ? `, ${res.gpus} GPU ${res.gpu_model || ''}` : ''} × ${spec.workers || 1} worker(s)`],
      ['Step', num(j.step) ? `${fmtNum(j.step)} (checkpoint at ${fmtNum(j.checkpoint_step)})` : null],
      ['Attempt', `${j.attempt || 1} (restarts ${j.restarts || 0}, preemptions ${j.preemptions || 0})`],
      ['Priority', spec.priority ? String(spec.priority) : null],
      ['Labels', Object.keys(spec.labels || {}).length ? chips(spec.labels) : null],
      ['Created', time(j.create_time)],
      ['Updated', time(j.update_time)],
      ['Logs', mono(`bmaas job logs ${j.id}${live ? ' -f' : ''}`)],
    ])),
    section('State history', table([
      { title: 'Time', cell: (t) => time(t.time) },
      { title: 'State', cell: (t) => badge(t.state) },
      { title: 'Reason', cell: (t) => t.reason || '' },
    ], hist, { id: 'history', empty: 'No transitions recorded.' })),
    section('Training curves', curveView),
    section(`Logs (the last ${LOG_LINES} lines${live ? ', refreshing' : ''})`, logView),
    section('Latest metrics', table([
      { title: 'Metric', cell: ([k]) => k }, { title: 'Value', num: true, cell: ([, x]) => fmtNum(x, 6) }],
    metrics, { empty: live ? 'No metrics reported yet.' : 'No metrics reported.' })),
    section('Hyperparameters', table([
      { title: 'Name', cell: ([k]) => k }, { title: 'Value', cell: ([, x]) => mono(x) }],
    Object.entries(rt.hyperparameters || {}).sort(), { empty: 'Defaults only.' })),
    section('Spec', json(spec)));
}

