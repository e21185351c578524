// Experiment, deployment and node views.
import { api, list, settle, enc } from './api.js';
import {
  h, frag, header, table, kv, section, panel, time, badge, link, chips, part, mono,
  fmtNum, fmtBytes, num, strip, cpu, usage, errorBox,
} from './ui.js';

const xHref = (id) => `#/experiments/${enc(id)}`;
const depHref = (n) => `#/deployments/${enc(n)}`;
const modelLink = (m) => (m ? link(`#/models/${enc(m)}`, m) : '');
const running = (x) => x.state === 'EXPERIMENT_STATE_RUNNING';
const paused = (x) => x.state === 'EXPERIMENT_STATE_PAUSED';

// action is a button that calls the API, then draws the page again; an
// error shows in out.
function action(id, label, out, call, ctx, cls = 'btn') {
  return h('button', { class: cls, id, type: 'button', onclick: async (e) => {
    e.target.disabled = true;
    try {
      await call();
      ctx.rerender();
    } catch (err) {
      e.target.disabled = false;
      out.replaceChildren(errorBox(err, label));
    }
  } }, label);
}

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

const canary = (d) => (num(d.canary_version) ? `v${d.canary_version} @ ${d.canary_percent || 0}%` : '');

export async function deployments(ctx) {
  const ds = await list('/v1/deployments', 'deployments');
  ctx.refresh(3000);
  return frag(
    header('Deployments', `${ds.length} total`),
    table([
      { title: 'Name', cell: (d) => link(depHref(d.name), d.name) },
      { title: 'Model', cell: (d) => mono(d.model) },
      { title: 'Version', cell: (d) => (num(d.status?.version) ? link(`#/models/${enc(d.model.split('@')[0])}/versions/${d.status.version}`, `v${d.status.version}`) : '') },
      { title: 'State', cell: (d) => badge(d.state, d.status?.message) },
      { title: 'Ready / desired', num: true, cell: (d) => `${num(d.status?.ready_replicas)} / ${num(d.status?.desired_replicas)}` },
      { title: 'Min–max', num: true, cell: (d) => `${d.min_replicas || 0}–${d.max_replicas || 0}` },
      { title: 'Concurrency', num: true, cell: (d) => `${fmtNum(d.status?.concurrency || 0, 3)} / ${d.target_concurrency || '–'}` },
      { title: 'Canary', cell: canary },
      { title: 'Last request', cell: (d) => time(d.status?.last_request_time) },
    ], ds, { id: 'deployments', empty: 'No deployments yet.', hint: 'Create one with `bmaas deploy create --model NAME@latest`.' }));
}

export async function deployment(ctx) {
  const [name] = ctx.params;
  const d = (await api(`/v1/deployments/${enc(name)}`)).deployment;
  ctx.refresh(3000);
  const st = d.status || {};
  const res = d.resources || {};
  const model = d.model.split('@')[0];
  const out = h('div');
  const minIn = h('input', { type: 'number', id: 'dep-min', min: '0', value: String(d.min_replicas || 0), class: 'narrow' });
  const maxIn = h('input', { type: 'number', id: 'dep-max', min: '1', value: String(d.max_replicas || 1), class: 'narrow' });
  // UpdateDeployment takes the whole deployment; its status is the server's.
  const scale = () => {
    const upd = { ...d, min_replicas: Number(minIn.value), max_replicas: Number(maxIn.value) };
    delete upd.status;
    delete upd.state;
    return api(`/v1/deployments/${enc(d.name)}`, { method: 'PATCH', body: upd });
  };
  const rollback = () => api(`/v1/deployments/${enc(d.name)}:rollback`, { method: 'POST', body: {} });
  return frag(
    header(d.name, d.model, [link('#/deployments', 'Deployments')], badge(d.state, st.message)),
    h('div', { class: 'toolbar' }, h('label', {}, 'Min ', minIn), h('label', {}, 'Max ', maxIn),
      action('dep-scale', 'Scale', out, scale, ctx, 'btn primary'),
      num(st.previous_version) ? action('dep-rollback', `Roll back to v${st.previous_version}`, out, rollback, ctx) : null),
    out,
    panel(kv([
      ['State', [badge(d.state), st.message ? ` ${st.message}` : '']],
      ['Model', [modelLink(model), ` (${d.model})`]],
      ['Serving', num(st.version) ? link(`#/models/${enc(model)}/versions/${st.version}`, `v${st.version}`) : 'no version yet'],
      ['Previous', num(st.previous_version) ? `v${st.previous_version}` : null],
      ['Canary', canary(d) || null],
      ['Replicas', `${num(st.ready_replicas)} ready of ${num(st.desired_replicas)} desired (min ${d.min_replicas || 0}, max ${d.max_replicas || 0})`],
      ['Autoscaling', d.autoscaling ? `on, target concurrency ${d.target_concurrency || '–'}${num(d.scale_to_zero_seconds) ? `, to zero after ${d.scale_to_zero_seconds}s idle` : ''}` : 'off'],
      ['Concurrency', fmtNum(st.concurrency || 0, 3)],
      ['Batching', d.max_batch_size ? `up to ${d.max_batch_size} rows, waiting at most ${fmtNum(num(d.max_queue_delay_micros) / 1000)} ms` : 'off'],
      ['Resources', num(res.cpu_millis) || num(res.memory_bytes) || num(res.gpus)
        ? `${cpu(res.cpu_millis)}, ${fmtBytes(res.memory_bytes)}${num(res.gpus) ? `, ${res.gpus} GPU` : ''} per replica` : 'scheduler defaults'],
      ['Last request', time(st.last_request_time)],
      ['Created', time(d.create_time)],
      ['Updated', time(d.update_time)],
      ['Inference', mono(`POST /v2/models/${d.name}/infer`)],
    ])),
    section('Replicas', table([
      { title: 'Replica', cell: (r) => link(`#/jobs/${enc(r.id)}`, r.id, { class: 'mono' }) },
      { title: 'Version', cell: (r) => `v${r.version}` },
      { title: 'Node', cell: (r) => r.node || '' },
      { title: 'Endpoint', cell: (r) => mono(r.endpoint || '') },
      { title: 'Ready', cell: (r) => h('span', { class: `badge ${r.ready ? 'ok' : 'warn'}` }, r.ready ? 'ready' : 'not ready') },
      { title: 'Job state', cell: (r) => (r.job_state ? badge(r.job_state) : '') },
    ], st.replicas || [], { id: 'replicas', empty: 'No replicas.', hint: d.autoscaling ? 'Scaled to zero: the next request starts one.' : null })));
}

function gpus(n) {
  const all = n.gpus || [];
  if (!all.length) return h('span', { class: 'muted' }, 'none');
  const byModel = {};
  for (const g of all) byModel[g.model || 'GPU'] = (byModel[g.model || 'GPU'] || 0) + 1;
  return h('div', {}, usage(n.allocated_gpus, all.length, String, 'GPUs'),
    Object.entries(byModel).map(([m, c]) => h('div', { class: 'txt muted' }, `${c}× ${m}${all.some((g) => g.fake) ? ' (simulated)' : ''}`)));
}

export async function nodes(ctx) {
  const ns = (await list('/v1/nodes', 'nodes')).sort((a, b) => a.name.localeCompare(b.name));
  ctx.refresh(5000);
  return frag(
    header('Nodes', `${ns.length} registered`),
    table([
      { title: 'Name', cell: (n) => h('strong', {}, n.name) },
      { title: 'Status', cell: () => h('span', { class: 'badge ok', title: 'the agent holds its lease' }, 'ready') },
      { title: 'Address', cell: (n) => mono(n.host && !n.address.startsWith(n.host) ? `${n.address} (${n.host})` : n.address) },
      { title: 'Pool', cell: (n) => n.pool || '' },
      { title: 'CPU', cell: (n) => usage(num(n.allocated_cpu_millis) / 1000, num(n.cpu_millis) / 1000, (x) => fmtNum(x, 3), 'CPU') },
      { title: 'Memory', cell: (n) => usage(n.allocated_memory_bytes, n.memory_bytes, fmtBytes, 'memory') },
      { title: 'GPUs', cell: gpus },
      { title: 'Labels', cell: (n) => chips(n.labels) },
      { title: 'Registered', cell: (n) => time(n.register_time) },
    ], ns, { id: 'nodes', empty: 'No nodes registered.', hint: 'Start a trainer agent: `bmaas serve --target=trainer-agent`.', rowData: (n) => ({ node: n.name }) }));
}
