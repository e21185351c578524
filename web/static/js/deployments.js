// Deployment views: the list with a form to deploy a version, and one
// deployment with its monitoring charts, alert rules and replicas.
import { api, list, enc } from './api.js';
import {
  h, frag, header, table, kv, section, panel, time, badge, link, mono, fmtNum, fmtBytes, num, cpu, action,
} from './ui.js';
import { createForm, compact } from './forms.js';
import { monitorSection, RANGES, rangeMinutes } from './monitor.js';

const depHref = (n) => `#/deployments/${enc(n)}`;
const modelLink = (m) => (m ? link(`#/models/${enc(m)}`, m) : '');

// scaleMask is the update_mask of the Scale button.
export const scaleMask = 'min_replicas,max_replicas';

const canary = (d) => (num(d.canary_version) ? `v${d.canary_version} @ ${d.canary_percent || 0}%` : '');

// deployForm creates a deployment (POST /v1/deployments, the body being
// the Deployment) and opens its page.
function deployForm() {
  return createForm({
    id: 'deploy-form',
    title: 'Deploy a version',
    fields: [
      { name: 'name', label: 'Name', placeholder: 'iris', hint: 'the v2 model name; empty: the model\'s' },
      { name: 'model', label: 'Model', placeholder: 'iris@production', required: true, hint: 'name@version or name@alias' },
      { name: 'min_replicas', label: 'Min replicas', type: 'number', value: 1, min: 0 },
      { name: 'max_replicas', label: 'Max replicas', type: 'number', value: 1, min: 1 },
      { name: 'autoscaling', label: 'Autoscaling', type: 'checkbox', value: false },
      { name: 'sample_rate', label: 'Log payloads', type: 'number', value: 0, min: 0, step: 'any', hint: 'share of requests logged for monitoring, 0 to 1' },
    ],
    submit: (v) => api('/v1/deployments', { method: 'POST', body: compact({
      name: v.name, model: v.model, min_replicas: v.min_replicas, max_replicas: v.max_replicas, autoscaling: v.autoscaling || undefined,
      payload_logging: v.sample_rate ? { sample_rate: v.sample_rate } : undefined,
    }) }),
    done: (r) => { if (r.deployment?.name) location.hash = depHref(r.deployment.name); },
  });
}

export async function deployments(ctx) {
  const ds = await list('/v1/deployments', 'deployments');
  // Replicas are serving jobs: their transitions change the list too.
  ctx.watch('deployment', 'job');
  return frag(
    header('Deployments', `${ds.length} total`),
    deployForm(),
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
  const range = RANGES.some(([k]) => k === ctx.query.get('range')) ? ctx.query.get('range') : '1h';
  const [d, monitoring] = await Promise.all([
    api(`/v1/deployments/${enc(name)}`).then((r) => r.deployment),
    monitorSection(name, rangeMinutes(range)),
  ]);
  ctx.watch('deployment', 'job', 'alert', 'model');
  // Monitoring windows fill without an event.
  ctx.refresh(5000);
  const st = d.status || {};
  const res = d.resources || {};
  const model = d.model.split('@')[0];
  const out = h('div');
  const minIn = h('input', { type: 'number', id: 'dep-min', min: '0', value: String(d.min_replicas || 0), class: 'narrow' });
  const maxIn = h('input', { type: 'number', id: 'dep-max', min: '1', value: String(d.max_replicas || 1), class: 'narrow' });
  // Scale changes the replica bounds only: the update mask names them, so
  // whatever else changed since the page was drawn is kept.
  const scale = () => api(`/v1/deployments/${enc(d.name)}?update_mask=${scaleMask}`, {
    method: 'PATCH', body: { min_replicas: Number(minIn.value), max_replicas: Number(maxIn.value) },
  });
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
    h('section', {},
      h('div', { class: 'head' }, h('h2', {}, 'Monitoring'),
        h('span', { class: 'toolbar ranges' }, RANGES.map(([k]) => (k === range
          ? h('span', { class: 'chip active' }, k)
          : link(`${depHref(d.name)}?range=${k}`, k, { class: 'chip', id: `range-${k}` }))))),
      monitoring),
    section('Replicas', table([
      { title: 'Replica', cell: (r) => link(`#/jobs/${enc(r.id)}`, r.id, { class: 'mono' }) },
      { title: 'Version', cell: (r) => `v${r.version}` },
      { title: 'Node', cell: (r) => r.node || '' },
      { title: 'Endpoint', cell: (r) => mono(r.endpoint || '') },
      { title: 'Ready', cell: (r) => h('span', { class: `badge ${r.ready ? 'ok' : 'warn'}` }, r.ready ? 'ready' : 'not ready') },
      { title: 'Job state', cell: (r) => (r.job_state ? badge(r.job_state) : '') },
    ], st.replicas || [], { id: 'replicas', empty: 'No replicas.', hint: d.autoscaling ? 'Scaled to zero: the next request starts one.' : null })));
}
