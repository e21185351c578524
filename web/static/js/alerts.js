// Alert views: the rules (GET /v1/alert-rules) with a form to create one,
// the alerts (GET /v1/alerts, newest first, optionally of one rule), and
// one alert with the chain of what the platform did about it as a
// timeline: notification, job, version, evaluation, decision, rollout,
// done (or error, skipped).
import { api, list, enc } from './api.js';
import { h, frag, header, table, kv, section, panel, time, link, mono, chips, fmtNum, empty } from './ui.js';
import { createForm, compact, pairs } from './forms.js';
import { alertBadge, ruleText, COMPARISONS } from './monitor.js';

const alertHref = (id) => `#/alerts/${enc(id)}`;
const depLink = (d) => (d ? link(`#/deployments/${enc(d)}`, d) : '');

// SERIES are what a rule can watch (AlertRule.series).
const SERIES = ['drift_score', 'drift_share', 'drifted_columns', 'prediction_drift', 'missing_rate', 'out_of_range_rate',
  'unseen_category_rate', 'schema_violations', 'accuracy', 'f1', 'auc', 'rmse', 'mae', 'requests', 'error_rate',
  'latency_p95_seconds'];

// ruleForm creates an alert rule (POST /v1/alert-rules, the body being
// the rule); the API names a bad field (rule.series, rule.for, ...).
function ruleForm(ctx) {
  return createForm({
    id: 'rule-form',
    title: 'New alert rule',
    note: 'The rule is evaluated on each monitoring window of its deployment; it fires once its condition has held for `for`.',
    fields: [
      { name: 'name', label: 'Name', placeholder: 'iris-drift', required: true },
      { name: 'deployment', label: 'Deployment', placeholder: 'iris', required: true },
      { name: 'series', label: 'Series', type: 'select', value: 'drifted_columns', options: SERIES.map((s) => [s, s]) },
      { name: 'column', label: 'Column', placeholder: 'petal_length_cm', hint: 'drift_score only; empty: the largest over the columns' },
      { name: 'comparison', label: 'Comparison', type: 'select', value: 'COMPARISON_GREATER_OR_EQUAL',
        options: Object.entries(COMPARISONS).map(([k, v]) => [k, v]) },
      { name: 'threshold', label: 'Threshold', type: 'number', step: 'any', value: 1 },
      { name: 'for', label: 'For', placeholder: '30s', hint: 'how long the condition holds before the rule fires' },
      { name: 'labels', label: 'Labels', placeholder: 'team=ml, severity=page' },
      { name: 'action', label: 'Action', type: 'select', value: '', options: [['', 'notify only'], ['retrain', 'retrain']] },
      { name: 'dataset', label: 'Retrain on', placeholder: 'dataset or dataset@version' },
      { name: 'cool_down', label: 'Cool-down', placeholder: '1h' },
    ],
    submit: (v) => api('/v1/alert-rules', { method: 'POST', body: compact({
      name: v.name, deployment: v.deployment, series: v.series, column: v.column, comparison: v.comparison,
      threshold: v.threshold, for: v.for, labels: pairs(v.labels, 'rule.labels'),
      action: v.action || v.dataset || v.cool_down ? { kind: v.action, dataset: v.dataset, cool_down: v.cool_down } : undefined,
    }) }),
    done: () => ctx.rerender(),
  });
}

// chainKinds is the alert's links as a short list of kinds.
const chainKinds = (a) => [...new Set((a.links || []).map((l) => l.kind))].join(' → ');

export function alertTable(alerts, opts = {}) {
  return table([
    { title: 'Alert', cell: (a) => link(alertHref(a.id), a.id, { class: 'mono' }) },
    { title: 'Rule', cell: (a) => a.rule },
    { title: 'Deployment', cell: (a) => depLink(a.deployment) },
    { title: 'State', cell: (a) => alertBadge(a.state) },
    { title: 'Value', num: true, cell: (a) => fmtNum(a.value ?? 0) },
    { title: 'Pending', cell: (a) => time(a.pending_time) },
    { title: 'Firing', cell: (a) => time(a.firing_time) },
    { title: 'Resolved', cell: (a) => time(a.resolved_time) },
    { title: 'Chain', cell: chainKinds },
  ], alerts, { id: 'alerts', empty: opts.empty || 'No alerts.', rowData: (a) => ({ alert: a.id, state: a.state || '' }) });
}

const active = (s) => s === 'ALERT_STATE_PENDING' || s === 'ALERT_STATE_FIRING';

export async function alerts(ctx) {
  const rule = ctx.query.get('rule') || '';
  const [rules, as] = await Promise.all([
    list('/v1/alert-rules', 'rules', 1000),
    list(`/v1/alerts${rule ? `?rule=${enc(rule)}` : ''}`, 'alerts', 500),
  ]);
  // An alert's chain moves with its job, version, evaluation and
  // decision; a rule's pending state has no event: poll while one is.
  ctx.watch('alert', 'job', 'model', 'evaluation', 'deployment');
  if (rules.some((r) => active(r.state)) || as.some((a) => active(a.state) || (a.links?.some((l) => l.kind === 'job') && !a.links.some((l) => l.kind === 'done' || l.kind === 'error')))) ctx.refresh(5000);
  const firing = rules.filter((r) => r.state === 'ALERT_STATE_FIRING').length;
  return frag(
    header('Alerts', `${rules.length} rules, ${firing} firing`),
    ruleForm(ctx),
    section('Rules', table([
      { title: 'Name', cell: (r) => link(`#/alerts?rule=${enc(r.name)}`, r.name) },
      { title: 'Deployment', cell: (r) => depLink(r.deployment) },
      { title: 'Condition', cell: (r) => mono(ruleText(r)) },
      { title: 'Action', cell: (r) => (r.action?.kind ? `${r.action.kind}${r.action.dataset ? ` on ${r.action.dataset}` : ''}` : 'notify') },
      { title: 'State', cell: (r) => alertBadge(r.state) },
      { title: 'Since', cell: (r) => time(r.state_time) },
      { title: 'Value', num: true, cell: (r) => fmtNum(r.value ?? 0) },
      { title: 'Alert', cell: (r) => (r.alert ? link(alertHref(r.alert), r.alert, { class: 'mono' }) : '') },
      { title: 'Labels', cell: (r) => chips(r.labels) },
    ], rules, { id: 'alert-rules', empty: 'No alert rules.', hint: 'Create one above or with `bmaas alert rule create`.', rowData: (r) => ({ rule: r.name }) })),
    section(rule ? `Alerts of ${rule}` : 'Alerts', rule ? h('p', {}, link('#/alerts', 'All alerts')) : null,
      alertTable(as, { empty: rule ? `No alerts of ${rule}.` : 'No alerts yet.' })));
}

// refLink links a chain step to its object's page: a job, a model
// version (model@version), a dataset version, the deployment rolled out;
// an evaluation or a decision to its model's page, which lists them.
function refLink(l, model) {
  const ref = l.ref || '';
  const at = ref.lastIndexOf('@');
  switch (l.kind) {
    case 'job': return link(`#/jobs/${enc(ref)}`, ref, { class: 'mono' });
    case 'version': return at > 0 ? link(`#/models/${enc(ref.slice(0, at))}/versions/${enc(ref.slice(at + 1))}`, ref) : ref;
    case 'dataset': return at > 0 ? link(`#/datasets/${enc(ref.slice(0, at))}`, ref) : ref;
    case 'rollout': return link(`#/deployments/${enc(ref)}`, ref);
    case 'evaluation':
    case 'decision': return model ? link(`#/models/${enc(model)}`, ref, { class: 'mono', title: `on ${model}'s page` }) : mono(ref);
    default: return ref ? mono(ref) : '';
  }
}

const STEP_TONES = { error: 'bad', done: 'ok', skipped: 'warn', notification: 'run' };

// chain is the alert's links as a timeline, in the order the platform
// recorded them (one step may carry a time a hair before the step it
// followed).
export function chain(a) {
  const links = a.links || [];
  if (!links.length) return empty('Nothing done yet.', 'Notifications and the rule\'s action show here as they happen.');
  const version = links.find((l) => l.kind === 'version' && l.ref?.includes('@'));
  const model = version ? version.ref.slice(0, version.ref.lastIndexOf('@')) : '';
  return h('ol', { class: 'timeline', id: 'chain' }, links.map((l) => h('li', { class: `step step-${l.kind}`, dataset: { kind: l.kind, ref: l.ref || '' } },
    h('span', { class: `badge ${STEP_TONES[l.kind] || ''}` }, l.kind),
    h('span', { class: 'step-ref' }, refLink(l, model)),
    h('span', { class: 'step-msg' }, l.message || ''),
    h('span', { class: 'muted step-time' }, time(l.time)))));
}

export async function alert(ctx) {
  const [id] = ctx.params;
  const a = (await api(`/v1/alerts/${enc(id)}`)).alert;
  ctx.watch('alert', 'job', 'model', 'evaluation', 'deployment');
  const open = !(a.links || []).some((l) => l.kind === 'done' || l.kind === 'error' || l.kind === 'skipped');
  if (active(a.state) || (open && (a.links || []).some((l) => l.kind === 'job'))) ctx.refresh(5000);
  return frag(
    header(`Alert ${a.id}`, a.rule, [link('#/alerts', 'Alerts')], h('span', { id: 'alert-state' }, alertBadge(a.state))),
    panel(kv([
      ['Rule', link(`#/alerts?rule=${enc(a.rule)}`, a.rule)],
      ['Deployment', depLink(a.deployment)],
      ['State', alertBadge(a.state)],
      ['Value', fmtNum(a.value ?? 0)],
      ['Pending', time(a.pending_time)],
      ['Firing', time(a.firing_time)],
      ['Resolved', time(a.resolved_time)],
      ['Labels', Object.keys(a.labels || {}).length ? chips(a.labels) : null],
      ['Annotations', Object.keys(a.annotations || {}).length ? chips(a.annotations) : null],
      ['CLI', mono(`bmaas alert get ${a.id}`)],
    ])),
    section('What was done', chain(a)));
}
