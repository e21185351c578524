// The console's shell: hash routing, redrawing a view when the events it
// watches arrive (live.js) or on its timer, the sign-in form and the
// overview page.
import { list, settle, token, AuthError } from './api.js';
import { live } from './live.js';
import { h, frag, header, table, time, badge, link, part, empty, num, errorBox } from './ui.js';
import * as reg from './registry.js';
import * as jobs from './jobs.js';
import * as experimentViews from './experiments.js';
import * as deploymentViews from './deployments.js';
import * as nodeViews from './nodes.js';
import * as alertViews from './alerts.js';

const routes = [
  ['overview', /^$/, overview],
  ['models', /^models$/, reg.models],
  ['models', /^models\/([^/]+)$/, reg.model],
  ['models', /^models\/([^/]+)\/versions\/([^/]+)$/, reg.version],
  ['datasets', /^datasets$/, reg.datasets],
  ['datasets', /^datasets\/([^/]+)$/, reg.dataset],
  ['jobs', /^jobs$/, jobs.jobs],
  ['jobs', /^jobs\/([^/]+)$/, jobs.job],
  ['experiments', /^experiments$/, experimentViews.experiments],
  ['experiments', /^experiments\/([^/]+)$/, experimentViews.experiment],
  ['deployments', /^deployments$/, deploymentViews.deployments],
  ['deployments', /^deployments\/([^/]+)$/, deploymentViews.deployment],
  ['nodes', /^nodes$/, nodeViews.nodes],
  ['alerts', /^alerts$/, alertViews.alerts],
  ['alerts', /^alerts\/([^/]+)$/, alertViews.alert],
];

// FALLBACK_MS is how often a view that watches events is drawn again
// while the events stream is down.
const FALLBACK_MS = 30000;

const main = document.getElementById('main');
const status = document.getElementById('status');
const signout = document.getElementById('signout');
let seq = 0;
let timer;
// watching holds the event kinds of the view on screen, keyed the keys
// it watches of a kind, period its own timer's (0: none).
let watching = new Set();
let keyed = new Map();
let period = 0;

function parse() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const clean = path.replace(/\/+$/, '');
  for (const [name, re, view] of routes) {
    const m = clean.match(re);
    if (m) return { name, view, params: m.slice(1).map(decodeURIComponent), query: new URLSearchParams(qs || '') };
  }
  return { name: '', view: notFound, params: [clean], query: new URLSearchParams() };
}

// render draws the current route. A view returns its DOM and may ask to
// be drawn again: by ctx.watch(kinds...) when an event of those kinds
// arrives, by ctx.watchKey(kind, key) when one of that kind about that
// object arrives (a model's page, not every model's: events of other
// models would refetch it for nothing); every 30 s while the events
// stream is down; by
// ctx.refresh(ms) on a timer for what no event announces (monitoring
// windows, training curves). cause says why it draws (the pages keep it
// in main's data-cause).
async function render(auto = false, cause = 'route') {
  clearTimeout(timer);
  const my = ++seq;
  const route = parse();
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === route.name);
  signout.hidden = !token.get();
  let every = 0;
  const kinds = new Set();
  const keys = new Map();
  const ctx = {
    ...route,
    refresh: (ms) => { every = ms; },
    watch: (...ks) => { for (const k of ks) kinds.add(k); },
    watchKey: (kind, key) => { if (!keys.has(kind)) keys.set(kind, new Set()); keys.get(kind).add(key); },
    rerender: () => render(true, 'action'),
  };
  let node;
  try {
    node = await route.view(ctx);
  } catch (e) {
    if (my !== seq) return;
    if (e instanceof AuthError) {
      signIn(e);
      return;
    }
    node = frag(header('Error'), errorBox(e), h('p', {}, link('#/', 'Back to the overview')));
  }
  if (my !== seq) return;
  const y = window.scrollY;
  main.replaceChildren(node);
  main.dataset.cause = cause;
  main.dataset.renders = String(Number(main.dataset.renders || 0) + 1);
  if (auto) window.scrollTo(0, y);
  status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  watching = kinds;
  keyed = keys;
  period = every;
  schedule(my, every);
}

// schedule sets the view's timer: its own period, else the slow poll of
// a watching view while the events stream is down.
function schedule(my, every) {
  clearTimeout(timer);
  if (every) timer = setTimeout(() => tick(my, 'timer'), every);
  else if (watches() && !live.open) timer = setTimeout(() => tick(my, 'poll'), FALLBACK_MS);
}

// tick redraws unless the user is busy with a control of the page.
function tick(my, cause) {
  if (my !== seq) return;
  const el = document.activeElement;
  const busy = document.hidden || (main.contains(el) && el.matches('input, select, textarea'));
  if (busy) {
    timer = setTimeout(() => tick(my, cause), 1000);
    return;
  }
  render(true, cause);
}

const watches = () => watching.size > 0 || keyed.size > 0;
const wanted = (e) => watching.has(e.kind) || !!keyed.get(e.kind)?.has(e.key);

// Events redraw the view that watches their kind (or key); a stream that
// comes back redraws it too (events may have been missed), and one that goes
// starts the slow poll.
let wasOpen = false;
live.on((batch, state) => {
  const my = seq;
  if (batch) {
    if (batch.some(wanted)) tick(my, 'event');
    return;
  }
  if (state === 'open' && wasOpen && watches()) tick(my, 'reconnect');
  else if (state === 'closed' && watches()) schedule(my, period);
  if (state === 'open') wasOpen = true;
});

function signIn(err) {
  document.title = 'Sign in · bmaas';
  status.textContent = '';
  const had = token.get();
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'current-password', placeholder: 'bearer token', required: true });
  const form = h('form', {
    id: 'signin',
    onsubmit: (ev) => {
      ev.preventDefault();
      token.set(input.value);
      live.restart();
      render();
    },
  }, h('label', { for: 'token' }, 'Token'), input, h('button', { class: 'btn primary', type: 'submit' }, 'Sign in'));
  main.replaceChildren(h('div', { class: 'signin panel' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'This bmaas server requires a bearer token: the contents of the file given to --auth.token-file.'),
    had ? errorBox(err, 'The token was rejected') : null,
    form));
  if (had) token.clear();
  signout.hidden = true;
  input.focus();
}

async function notFound(ctx) {
  return frag(header('Not found'), empty(`No page at #/${ctx.params[0]}.`), h('p', {}, link('#/', 'Back to the overview')));
}

async function overview(ctx) {
  ctx.watch('model', 'dataset', 'job', 'experiment', 'deployment', 'node');
  const [models, datasets, js, xs, deps, nodes] = await settle([
    list('/v1/models', 'models'), list('/v1/datasets', 'datasets'), list('/v1/jobs', 'jobs'),
    list('/v1/experiments', 'experiments'), list('/v1/deployments', 'deployments'), list('/v1/nodes', 'nodes')]);
  const card = (r, href, label, extra) => h('a', { class: 'card', href, id: `count-${label.toLowerCase()}` },
    h('div', { class: 'n' }, r.ok ? r.value.length : '–'), h('div', { class: 'label' }, label),
    h('div', { class: 'extra' }, r.ok ? extra(r.value) : r.error.message));
  const count = (arr, f) => arr.filter(f).length;
  const recent = js.ok ? [...js.value].sort((a, b) => (b.create_time || '').localeCompare(a.create_time || '')).slice(0, 10) : [];
  return frag(
    header('Overview'),
    h('div', { class: 'cards' },
      card(models, '#/models', 'Models', (v) => `${v.reduce((s, m) => s + num(m.version_count), 0)} versions`),
      card(datasets, '#/datasets', 'Datasets', (v) => `${v.reduce((s, d) => s + num(d.latest_version), 0)} versions`),
      card(js, '#/jobs', 'Jobs', (v) => `${count(v, jobs.active)} active, ${count(v, (j) => j.state === 'JOB_STATE_FAILED')} failed`),
      card(xs, '#/experiments', 'Experiments', (v) => `${count(v, (x) => x.state === 'EXPERIMENT_STATE_RUNNING')} running`),
      card(deps, '#/deployments', 'Deployments', (v) => `${v.reduce((s, d) => s + num(d.status?.ready_replicas), 0)} ready replicas`),
      card(nodes, '#/nodes', 'Nodes', (v) => `${v.reduce((s, n) => s + (n.gpus?.length || 0), 0)} GPUs`)),
    h('h2', {}, 'Recent jobs'),
    part(js, () => jobs.jobTable(recent, 'No jobs yet. Train one with `bmaas train`.'), 'Jobs'),
    h('h2', {}, 'Deployments'),
    part(deps, (v) => table([
      { title: 'Name', cell: (d) => link(`#/deployments/${encodeURIComponent(d.name)}`, d.name) },
      { title: 'Model', cell: (d) => d.model },
      { title: 'State', cell: (d) => badge(d.state) },
      { title: 'Ready', num: true, cell: (d) => `${num(d.status?.ready_replicas)} / ${num(d.status?.desired_replicas)}` },
      { title: 'Created', cell: (d) => time(d.create_time) },
    ], v, { empty: 'No deployments yet. Create one with `bmaas deploy create`.' }), 'Deployments'));
}

signout.addEventListener('click', () => { token.clear(); live.restart(); render(); });
window.addEventListener('hashchange', () => render());
render();
live.start();

