// The console's shell: hash routing, auto-refresh, the sign-in form and
// the overview page.
import { list, settle, token, AuthError } from './api.js';
import { h, frag, header, table, time, badge, link, part, empty, num, errorBox } from './ui.js';
import * as reg from './registry.js';
import * as jobs from './jobs.js';
import * as experimentViews from './experiments.js';
import * as deploymentViews from './deployments.js';
import * as nodeViews from './nodes.js';

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
];

const main = document.getElementById('main');
const status = document.getElementById('status');
const signout = document.getElementById('signout');
let seq = 0;
let timer;

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

// render draws the current route. A view returns its DOM and may ask, by
// ctx.refresh(ms), to be drawn again while its data is live.
async function render(auto = false) {
  clearTimeout(timer);
  const my = ++seq;
  const route = parse();
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === route.name);
  signout.hidden = !token.get();
  let every = 0;
  const ctx = { ...route, refresh: (ms) => { every = ms; }, rerender: () => render(true) };
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
  if (auto) window.scrollTo(0, y);
  status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  if (every) timer = setTimeout(() => tick(my), every);
}

// tick redraws unless the user is busy with a control of the page.
function tick(my) {
  if (my !== seq) return;
  const el = document.activeElement;
  const busy = document.hidden || (main.contains(el) && el.matches('input, select, textarea'));
  if (busy) {
    timer = setTimeout(() => tick(my), 1000);
    return;
  }
  render(true);
}

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
  ctx.refresh(5000);
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

signout.addEventListener('click', () => { token.clear(); render(); });
window.addEventListener('hashchange', () => render());
render();

