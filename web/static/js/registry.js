// Registry views: models, a model with its versions, aliases, decisions
// and evaluations, one version, datasets and a dataset with its versions.
import { api, list, settle, enc, download, upload } from './api.js';
import {
  h, frag, header, table, kv, section, panel, time, badge, link, chips, part, mono, short,
  fmtBytes, fmtNum, num, strip, empty, errorBox, paged,
} from './ui.js';
import { lineChart, chartGrid, chartId } from './charts.js';
import { createForm } from './forms.js';

const modelHref = (m) => `#/models/${enc(m)}`;
const versionHref = (m, v) => `#/models/${enc(m)}/versions/${enc(v)}`;
const datasetHref = (d) => `#/datasets/${enc(d)}`;
export { modelHref, versionHref, datasetHref };

// downloadLink fetches with the bearer token (a plain link would not
// carry it) and shows a failure beside the link.
function downloadLink(path, filename, text = 'download') {
  const a = h('a', { href: path });
  a.textContent = text;
  a.addEventListener('click', async (ev) => {
    ev.preventDefault();
    a.nextSibling?.remove?.();
    try { await download(path, filename); } catch (e) { a.after(errorBox(e, 'Download')); }
  });
  return h('span', {}, a);
}

// keyMetrics picks up to n metric names worth a column: held-out ones
// first, in a stable order.
function keyMetrics(versions, n = 4) {
  const names = new Set();
  for (const v of versions) for (const k of Object.keys(v.metrics || {})) names.add(k);
  const rank = (k) => (k.startsWith('test_') ? 0 : k.startsWith('validation_') ? 1 : 2);
  const prefer = ['accuracy', 'f1_macro', 'roc_auc', 'r2', 'rmse', 'mae', 'log_loss', 'loss'];
  const score = (k) => { const i = prefer.findIndex((p) => k.endsWith(p)); return i < 0 ? prefer.length : i; };
  return [...names].sort((a, b) => rank(a) - rank(b) || score(a) - score(b) || a.localeCompare(b)).slice(0, n);
}

// modelMatches: q (lower case) is in the model's name, description or
// one of its labels (key=value).
const modelMatches = (m, q) => !q || [m.name, m.description, ...Object.entries(m.labels || {}).map(([k, v]) => `${k}=${v}`)]
  .some((s) => s && s.toLowerCase().includes(q));

// models lists the models a page at a time (all are read, for the count
// and the search; a page of rows is drawn).
export async function models(ctx) {
  ctx.watch('model', 'alias');
  const ms = await list('/v1/models', 'models');
  const q = (ctx.query.get('q') || '').trim().toLowerCase();
  const go = (params) => `#/models${params.toString() ? `?${params}` : ''}`;
  const href = (page) => { const p = new URLSearchParams(ctx.query); p.set('page', page); return go(p); };
  const search = h('input', { type: 'search', id: 'model-search', placeholder: 'name, description, label', value: q || null,
    onchange: (e) => { const p = new URLSearchParams(ctx.query); p.delete('page'); if (e.target.value.trim()) p.set('q', e.target.value.trim()); else p.delete('q'); location.hash = go(p); } });
  const match = ms.filter((m) => modelMatches(m, q));
  const page = paged(match, ctx.query.get('page'), href, 'models-pager');
  return frag(
    header('Models', `${ms.length} registered`),
    h('div', { class: 'toolbar' }, search, q ? h('span', { class: 'muted' }, `${match.length} match`) : null),
    table([
      { title: 'Name', cell: (m) => link(modelHref(m.name), m.name) },
      { title: 'Task', cell: (m) => strip(m.task_type).replaceAll('_', ' ').toLowerCase() },
      { title: 'Versions', num: true, cell: (m) => num(m.version_count) },
      { title: 'Latest', cell: (m) => (m.latest_version ? `v${m.latest_version}` : '') },
      { title: 'Aliases', cell: (m) => chips(Object.fromEntries(Object.entries(m.aliases || {}).map(([a, v]) => [`${a}→v${v}`, '']))) },
      { title: 'Labels', cell: (m) => chips(m.labels) },
      { title: 'Description', cell: (m) => m.description || '' },
      { title: 'Updated', cell: (m) => time(m.update_time || m.create_time) },
    ], page.rows, ms.length ? { id: 'models', empty: 'No model matches the search.' }
      : { id: 'models', empty: 'No models yet.', hint: 'Create one with `bmaas model create NAME` or train one with `bmaas train`.' }),
    page.nav);
}

export async function model(ctx) {
  const [name] = ctx.params;
  const m = (await api(`/v1/models/${enc(name)}`)).model;
  const [vs, ds, evs] = await settle([
    // The basic view: the table and charts need no signature or training
    // statistics (most of a version's size; its own page reads them).
    list(`/v1/models/${enc(name)}/versions?view=VERSION_VIEW_BASIC`, 'versions'),
    list(`/v1/models/${enc(name)}/decisions`, 'decisions'),
    list(`/v1/evaluations?model=${enc(name)}`, 'evaluations', 200),
  ]);
  // This model's events only (versions, aliases, decisions): another
  // model's would read its versions again for nothing.
  ctx.watchKey('model', name);
  ctx.watch('evaluation');
  if (vs.ok && vs.value.some((v) => v.status === 'VERSION_STATUS_PENDING')) ctx.refresh(3000);
  const aliases = Object.entries(m.aliases || {}).sort();
  return frag(
    header(m.name, m.description, [link('#/models', 'Models')]),
    panel(kv([
      ['Task', strip(m.task_type).replaceAll('_', ' ').toLowerCase()],
      ['Versions', num(m.version_count)],
      ['Latest', m.latest_version ? `v${m.latest_version}` : null],
      ['Labels', Object.keys(m.labels || {}).length ? chips(m.labels) : null],
      ['Created', time(m.create_time)],
      ['Updated', time(m.update_time)],
    ])),
    section('Metrics across versions', part(vs, (v) => versionCharts(v, ds.ok ? ds.value : [], aliases), 'Versions')),
    section('Versions', part(vs, (v) => versionTable(name, v, ctx), 'Versions')),
    section('Aliases', table([
      { title: 'Alias', cell: ([a]) => mono(a) },
      { title: 'Version', cell: ([, v]) => link(versionHref(name, v), `v${v}`) },
    ], aliases, { id: 'aliases', empty: 'No aliases.', hint: `Set one with \`bmaas model alias set ${name} production VERSION\`.` })),
    section('Promotion decisions', part(ds, decisionTable, 'Decisions')),
    section('Evaluations', part(evs, (e) => evaluationTable(name, e), 'Evaluations')));
}

const SPLITS = ['train', 'validation', 'test'];

// splitName parses a version's metric name: test_accuracy is the split
// test and the metric accuracy; a name without a known split is its own.
export function splitName(k) {
  const m = /^(train|validation|test)_(.+)$/.exec(k);
  return m ? { split: m[1], metric: m[2] } : { split: '', metric: k };
}

// MAX_VERSION_CHARTS bounds the charts of a model page (the metrics
// keyMetrics ranks first).
const MAX_VERSION_CHARTS = 6;

// versionMarkers marks the versions a decision promoted (to its alias)
// and the versions the model's aliases point at now.
export function versionMarkers(ds, aliases) {
  const out = [];
  for (const d of ds) if (d.promoted) out.push({ x: num(d.version), label: `promoted → ${d.target_alias || 'alias'}`, tone: 'promotion' });
  for (const [a, v] of aliases) out.push({ x: num(v), label: a, tone: 'alias' });
  return out.sort((a, b) => a.x - b.x || a.label.localeCompare(b.label));
}

// versionCharts draws each metric across the versions (x = version), a
// series per split, with promotions and aliases marked.
function versionCharts(vs, ds, aliases) {
  const names = new Set(vs.flatMap((v) => Object.keys(v.metrics || {})));
  const groups = new Map();
  for (const k of keyMetrics(vs, names.size)) {
    const { split, metric } = splitName(k);
    if (!groups.has(metric)) groups.set(metric, []);
    groups.get(metric).push({ split, key: k });
  }
  const markers = versionMarkers(ds, aliases);
  const sorted = [...vs].sort((a, b) => num(a.version) - num(b.version));
  const charts = [...groups.entries()].slice(0, MAX_VERSION_CHARTS).map(([metric, keys]) => lineChart(
    { id: chartId(metric), title: metric, x: 'version', y: metric },
    keys.sort((a, b) => SPLITS.indexOf(a.split) - SPLITS.indexOf(b.split)).map(({ split, key }) => ({
      label: split || metric,
      dash: split === 'train',
      points: sorted.filter((v) => v.metrics && key in v.metrics).map((v) => [num(v.version), num(v.metrics[key])]),
    })),
    markers));
  if (!charts.length) return empty('No version has metrics yet.');
  return [chartGrid(...charts),
    groups.size > MAX_VERSION_CHARTS ? h('p', { class: 'muted' }, `The first ${MAX_VERSION_CHARTS} of ${groups.size} metrics.`) : null];
}

// versionTable lists the versions, newest first, a page at a time (the
// charts above hold them all).
function versionTable(name, vs, ctx) {
  vs = [...vs].sort((a, b) => num(b.version) - num(a.version));
  const metrics = keyMetrics(vs);
  const href = (p) => `${modelHref(name)}?versions=${p}`;
  const page = paged(vs, ctx.query.get('versions'), href, 'versions-pager');
  return [table([
    { title: 'Version', cell: (v) => link(versionHref(name, v.version), `v${v.version}`) },
    { title: 'State', cell: (v) => badge(v.status, v.status_message) },
    { title: 'Format', cell: (v) => strip(v.format).toLowerCase() },
    { title: 'Size', num: true, cell: (v) => fmtBytes(v.size_bytes) },
    { title: 'Aliases', cell: (v) => (v.aliases || []).map((a) => h('span', { class: 'chip' }, a)) },
    ...metrics.map((k) => ({ title: k, name: true, num: true, cell: (v) => fmtNum(v.metrics?.[k]) })),
    { title: 'Source', cell: (v) => (v.lineage?.job_id ? link(`#/jobs/${enc(v.lineage.job_id)}`, v.lineage.experiment_id ? 'trial job' : 'job') : v.filename || '') },
    { title: 'Created', cell: (v) => time(v.create_time) },
  ], page.rows, { id: 'versions', empty: 'No versions yet.', hint: 'Upload one with `bmaas model version upload` or train one.', rowData: (v) => ({ version: v.version }) }),
  page.nav];
}

function decisionTable(ds) {
  ds = [...ds].sort((a, b) => (b.create_time || '').localeCompare(a.create_time || ''));
  return table([
    { title: 'When', cell: (d) => time(d.create_time) },
    { title: 'Version', cell: (d) => link(versionHref(d.model, d.version), `v${d.version}`) },
    { title: 'Alias', cell: (d) => mono(d.target_alias || '') },
    { title: 'Outcome', cell: (d) => h('span', { class: `badge ${d.promoted ? 'ok' : 'warn'}` }, d.promoted ? 'promoted' : 'kept') },
    { title: 'Incumbent', cell: (d) => (num(d.incumbent_version) ? `v${d.incumbent_version}` : 'none') },
    { title: 'Metric', cell: (d) => d.primary_metric || '' },
    { title: 'Candidate', num: true, cell: (d) => fmtNum(d.candidate_value) },
    { title: 'Incumbent value', num: true, cell: (d) => (num(d.incumbent_version) ? fmtNum(d.incumbent_value) : '') },
    { title: 'Reasons', cell: (d) => (d.reasons || []).join('; ') },
  ], ds, { empty: 'No promotion decisions.', hint: 'Decisions appear once the model has a promotion policy (PUT /v1/models/NAME/evaluation-policy).' });
}

// An evaluation's enums and version numbers, read from the fields that
// replaced the strings (an evaluator from before them sends the strings).
const kind = (v, prefix) => (v && v !== `${prefix}UNSPECIFIED` ? v.slice(prefix.length).toLowerCase() : '');
const evSplit = (e) => kind(e.split_kind, 'EVALUATION_SPLIT_') || e.split || '';
const evTrigger = (e) => kind(e.trigger_kind, 'EVALUATION_TRIGGER_') || e.trigger || '';
const evVersion = (e) => (num(e.model_version) ? e.model_version : e.version);
const evDataVersion = (e) => (num(e.dataset_version_number) ? e.dataset_version_number : e.dataset_version);

function evaluationTable(name, es) {
  es = [...es].sort((a, b) => (b.create_time || '').localeCompare(a.create_time || ''));
  const metrics = keyMetrics(es, 3);
  return table([
    { title: 'When', cell: (e) => time(e.create_time) },
    { title: 'Version', cell: (e) => link(versionHref(name, evVersion(e)), `v${evVersion(e)}`) },
    { title: 'Data', cell: (e) => [link(datasetHref(e.dataset), e.dataset), evDataVersion(e) ? `@${evDataVersion(e)}` : '', evSplit(e) ? ` (${evSplit(e)})` : ''] },
    { title: 'State', cell: (e) => badge(e.state, e.message) },
    { title: 'Rows', num: true, cell: (e) => fmtNum(e.rows) },
    ...metrics.map((k) => ({ title: k, name: true, num: true, cell: (e) => fmtNum(e.metrics?.[k]) })),
    { title: 'Drift (PSI)', num: true, cell: (e) => fmtNum(e.drift_score) },
    { title: 'Trigger', cell: evTrigger },
  ], es, { empty: 'No evaluations.', hint: `Run one with \`bmaas evaluate --model ${name}@latest --dataset DATASET\`.` });
}

export async function version(ctx) {
  const [name, ref] = ctx.params;
  const v = (await api(`/v1/models/${enc(name)}/versions/${enc(ref)}`)).version;
  if (v.status === 'VERSION_STATUS_PENDING') ctx.refresh(3000);
  const lin = v.lineage || {};
  const metrics = Object.entries(v.metrics || {}).sort(([a], [b]) => a.localeCompare(b));
  const hp = Object.entries(v.hyperparameters || {}).sort(([a], [b]) => a.localeCompare(b));
  const sig = v.signature || {};
  const tensors = [...(sig.inputs || []).map((t) => ({ ...t, io: 'input' })), ...(sig.outputs || []).map((t) => ({ ...t, io: 'output' }))];
  return frag(
    header(`${name} v${v.version}`, v.description, [link('#/models', 'Models'), link(modelHref(name), name)], badge(v.status, v.status_message)),
    panel(kv([
      ['State', [badge(v.status), v.status_message ? ` ${v.status_message}` : '']],
      ['Format', strip(v.format).toLowerCase()],
      ['Size', fmtBytes(v.size_bytes)],
      ['File', v.filename],
      ['SHA-256', v.sha256 ? mono(v.sha256) : null],
      ['Aliases', (v.aliases || []).length ? v.aliases.map((a) => h('span', { class: 'chip' }, a)) : null],
      ['Job', lin.job_id ? link(`#/jobs/${enc(lin.job_id)}`, lin.job_id) : null],
      ['Experiment', lin.experiment_id ? link(`#/experiments/${enc(lin.experiment_id)}`, lin.experiment_id) : null],
      ['Dataset', lin.dataset ? [link(datasetHref(lin.dataset), lin.dataset), ` v${lin.dataset_version || '?'}`] : null],
      ['Parent', num(lin.parent_version) ? link(versionHref(name, lin.parent_version), `v${lin.parent_version}`) : null],
      ['Labels', Object.keys(v.labels || {}).length ? chips(v.labels) : null],
      ['Created', time(v.create_time)],
      ['Artifact', downloadLink(`/v1/models/${enc(name)}/versions/${enc(v.version)}/artifact`, v.filename || `${name}-v${v.version}`)],
    ])),
    h('div', { class: 'grid2' },
      section('Metrics', table([
        { title: 'Metric', cell: ([k]) => k }, { title: 'Value', num: true, cell: ([, x]) => fmtNum(x, 6) }], metrics, { empty: 'No metrics recorded.' })),
      section('Hyperparameters', table([
        { title: 'Name', cell: ([k]) => k }, { title: 'Value', cell: ([, x]) => mono(x) }], hp, { empty: 'No hyperparameters recorded.' }))),
    section('Signature', table([
      { title: 'Tensor', cell: (t) => [mono(t.name), ` (${t.io})`] },
      { title: 'Type', cell: (t) => strip(t.datatype) },
      { title: 'Shape', cell: (t) => mono(`[${(t.shape || []).join(', ')}]`) },
      { title: 'Columns / labels', cell: (t) => (t.columns || t.labels || []).join(', ') },
    ], tensors, { empty: 'No signature recorded.' })),
    section('Training data', statsTable(v.training_stats)));
}

function statsTable(stats) {
  if (!stats?.columns?.length) return empty('No training-data statistics recorded.');
  return [h('p', { class: 'muted' }, `${num(stats.rows).toLocaleString()} rows, ${stats.columns.length} columns`), columnTable(stats.columns)];
}

function columnTable(cols) {
  return table([
    { title: 'Column', cell: (c) => c.name },
    { title: 'Kind', cell: (c) => strip(c.kind).toLowerCase() },
    { title: 'Count', num: true, cell: (c) => fmtNum(c.count ?? 0) },
    { title: 'Missing', num: true, cell: (c) => fmtNum(c.missing ?? 0) },
    { title: 'Mean', num: true, cell: (c) => (c.kind === 'VALUE_KIND_CATEGORICAL' ? '' : fmtNum(c.mean ?? 0)) },
    { title: 'Std', num: true, cell: (c) => (c.kind === 'VALUE_KIND_CATEGORICAL' ? '' : fmtNum(c.std ?? 0)) },
    { title: 'Min', num: true, cell: (c) => (c.kind === 'VALUE_KIND_CATEGORICAL' ? '' : fmtNum(c.min ?? 0)) },
    { title: 'Max', num: true, cell: (c) => (c.kind === 'VALUE_KIND_CATEGORICAL' ? '' : fmtNum(c.max ?? 0)) },
    { title: 'Top values', cell: (c) => (c.top_categories || []).slice(0, 5).map((t) => `${t.value} (${t.count})`).join(', ') + (num(c.distinct) ? ` · ${c.distinct} distinct` : '') },
  ], cols);
}

// uploadForm uploads a CSV file as a new version of a dataset (PUT
// /v1/datasets/{name}/csv, the raw bytes) and opens the dataset's page.
function uploadForm() {
  return createForm({
    id: 'dataset-form',
    title: 'Upload a dataset',
    fields: [
      { name: 'name', label: 'Name', placeholder: 'iris', required: true, hint: 'a new dataset, or a new version of one' },
      { name: 'file', label: 'CSV file', type: 'file' },
      { name: 'description', label: 'Description' },
    ],
    submit: (v) => {
      if (!v.name) throw new Error('name: a dataset name is required');
      if (!v.file) throw new Error('file: choose a CSV file');
      const q = new URLSearchParams({ filename: v.file.name });
      if (v.description) q.set('description', v.description);
      return upload(`/v1/datasets/${enc(v.name)}/csv?${q}`, v.file, 'text/csv');
    },
    done: (r, v) => { location.hash = datasetHref(v.name); },
  });
}

export async function datasets(ctx) {
  ctx.watch('dataset');
  const ds = await list('/v1/datasets', 'datasets');
  // The list does not carry the newest version's statistics; fetch them.
  const full = await settle(ds.slice(0, 100).map((d) => api(`/v1/datasets/${enc(d.name)}`)));
  const latest = new Map(full.filter((r) => r.ok).map((r) => [r.value.dataset.name, r.value.dataset.latest]));
  const stat = (d, f) => { const l = latest.get(d.name); return l ? f(l) : ''; };
  return frag(
    header('Datasets', `${ds.length} registered`),
    uploadForm(),
    table([
      { title: 'Name', cell: (d) => link(datasetHref(d.name), d.name) },
      { title: 'Versions', num: true, cell: (d) => num(d.latest_version) },
      { title: 'Rows', num: true, cell: (d) => stat(d, (l) => fmtNum(l.stats?.rows)) },
      { title: 'Columns', num: true, cell: (d) => stat(d, (l) => fmtNum(l.stats?.columns?.length)) },
      { title: 'Size', num: true, cell: (d) => stat(d, (l) => fmtBytes(l.size_bytes)) },
      { title: 'Labels', cell: (d) => chips(d.labels) },
      { title: 'Description', cell: (d) => d.description || '' },
      { title: 'Updated', cell: (d) => time(d.update_time || d.create_time) },
    ], ds, { id: 'datasets', empty: 'No datasets yet.', hint: 'Upload one with `bmaas dataset upload NAME FILE.csv`.' }));
}

export async function dataset(ctx) {
  const [name] = ctx.params;
  ctx.watch('dataset');
  const d = (await api(`/v1/datasets/${enc(name)}`)).dataset;
  const [vs] = await settle([list(`/v1/datasets/${enc(name)}/versions`, 'versions')]);
  const l = d.latest;
  return frag(
    header(d.name, d.description, [link('#/datasets', 'Datasets')]),
    panel(kv([
      ['Versions', num(d.latest_version)],
      ['Labels', Object.keys(d.labels || {}).length ? chips(d.labels) : null],
      ['Created', time(d.create_time)],
      ['Updated', time(d.update_time)],
    ])),
    section('Versions', part(vs, (v) => table([
      { title: 'Version', cell: (x) => `v${x.version}` },
      { title: 'File', cell: (x) => x.filename || '' },
      { title: 'Rows', num: true, cell: (x) => fmtNum(x.stats?.rows) },
      { title: 'Columns', num: true, cell: (x) => fmtNum(x.stats?.columns?.length) },
      { title: 'Size', num: true, cell: (x) => fmtBytes(x.size_bytes) },
      { title: 'SHA-256', cell: (x) => short(x.sha256) },
      { title: 'Created', cell: (x) => time(x.create_time) },
      { title: '', cell: (x) => downloadLink(`/v1/datasets/${enc(name)}/versions/${enc(x.version)}/csv`, `${name}-v${x.version}.csv`, 'csv') },
    ], [...v].sort((a, b) => num(b.version) - num(a.version)), { id: 'dataset-versions', empty: 'No versions.' }), 'Versions')),
    section(l ? `Schema of v${l.version}` : 'Schema', l?.stats?.columns?.length ? columnTable(l.stats.columns) : empty('No schema recorded.')),
  );
}
