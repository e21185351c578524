// The console's shell: hash routing, redrawing a view when the events it
// watches arrive (live.js) or on its timer, the sign-in page (a token, or
// single sign-on with the server's OpenID Connect provider), the header's
// identity and project switcher, and the overview page.
import { list, settle, token, project, inProject, authConfig, AuthError } from './api.js';
import { live } from './live.js';
import { h, frag, header, table, time, badge, link, part, empty, num, strip, errorBox } from './ui.js';
import * as reg from './registry.js';
import * as jobs from './jobs.js';
import * as experimentViews from './experiments.js';
import * as deploymentViews from './deployments.js';
import * as nodeViews from './nodes.js';
import * as alertViews from './alerts.js';
import * as projectViews from './projects.js';

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
  ['projects', /^projects$/, projectViews.projects],
  ['signin', /^signin$/, (ctx) => signInPage(null, ctx.query.get('error'))],
];

// FALLBACK_MS is how often a view that watches events is drawn again
// while the events stream is down.
const FALLBACK_MS = 30000;

const main = document.getElementById('main');
const status = document.getElementById('status');
const signout = document.getElementById('signout');
const whoami = document.getElementById('whoami');
const switcher = document.getElementById('project');
const projectsNav = document.querySelector('#nav a[data-view="projects"]');
let seq = 0;
// session is who is signed in and the projects they see (projects.js
// loadSession), read again on each move to another page; null until read.
let session = null;
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
  // Who is signed in is read alongside the view on a move to a page;
  // an automatic redraw keeps what was read.
  const reading = !session || !auto ? projectViews.loadSession().catch((e) => e) : Promise.resolve(session);
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
      showSignIn(my, e);
      return;
    }
    node = frag(header('Error'), errorBox(e), h('p', {}, link('#/', 'Back to the overview')));
  }
  const s = await reading;
  if (my !== seq) return;
  if (s instanceof AuthError && route.name !== 'signin') {
    showSignIn(my, s);
    return;
  }
  if (!(s instanceof Error)) session = s;
  if (route.name === 'signin') {
    placeSignIn(node);
    return;
  }
  if (drawSession(session)) {
    // The project chosen is not one this identity sees (any more): the
    // page was read for it, so it is read again for all projects.
    render(auto, cause);
    return;
  }
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

// signInPage is the sign-in: a link to the server's single sign-on when
// it has one (GET /v1/login/oidc, which comes back to #token=... or to
// #/signin?error=...), and the token form. err is the 401 that brought
// the page (a token sent and refused is said so, and forgotten); ssoError
// is the reason a single sign-on failed.
async function signInPage(err, ssoError) {
  const had = token.get();
  let config = {};
  try {
    config = await authConfig();
  } catch {
    config = {};
  }
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'current-password', placeholder: 'bearer token', required: true });
  const form = h('form', {
    id: 'signin',
    onsubmit: (ev) => {
      ev.preventDefault();
      token.set(input.value);
      signedIn();
    },
  }, h('label', { for: 'token' }, 'Token'), input, h('button', { class: 'btn primary', type: 'submit' }, 'Sign in'));
  const sso = config.oidc_web_login
    ? [h('a', { class: 'btn primary sso', id: 'sso', href: '/v1/login/oidc' }, 'Sign in with single sign-on'),
      h('p', { class: 'muted or' }, 'or with a token')]
    : null;
  const node = h('div', { class: 'signin panel' },
    h('h1', {}, 'Sign in'),
    ssoError ? errorBox({ message: ssoError }, 'Single sign-on failed') : null,
    had && err ? errorBox(err, 'The token was rejected') : null,
    sso,
    h('p', { class: 'muted' }, 'This bmaas server requires a bearer token: the contents of the file given to --auth.token-file, or one made with bmaas token create.'),
    form);
  if (had && err) token.clear();
  return node;
}

// showSignIn draws the sign-in for the 401 err, unless another draw
// started meanwhile.
async function showSignIn(my, err) {
  const node = await signInPage(err);
  if (my !== seq) return;
  placeSignIn(node);
}

function placeSignIn(node) {
  document.title = 'Sign in · bmaas';
  session = null;
  main.replaceChildren(node);
  status.textContent = '';
  signout.hidden = !token.get();
  drawSession(null);
  watching = new Set();
  keyed = new Map();
  period = 0;
  main.querySelector('#token')?.focus();
}

// signedIn starts over with a new token: a new identity, its own
// projects, its own events.
function signedIn() {
  session = null;
  project.clear();
  live.restart();
  if (parse().name === 'signin') location.hash = '#/';
  else render();
}

// takeToken keeps the token a single sign-on hands over in the address
// (#token=...), and replaces the address, in the bar and in the history,
// by the overview's, so that the secret stays in neither. It says whether
// there was one.
function takeToken() {
  if (!location.hash.startsWith('#token=')) return false;
  const t = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  if (t) {
    token.set(t);
    session = null;
    project.clear();
  }
  return true;
}

// drawSession shows who is signed in and the project switcher, or
// hides them where the server asks no token. It says whether the
// project chosen was dropped, not being one the identity sees.
function drawSession(s) {
  const on = !!s?.who;
  whoami.hidden = !on;
  switcher.parentElement.hidden = !on;
  projectsNav.hidden = !on;
  if (!on) {
    if (s && project.get()) {
      project.clear();
      return true;
    }
    return false;
  }
  const roles = (s.who.bindings || []).map((b) => `${b.project === '*' ? 'all projects' : b.project}: ${b.role}${b.deployment ? ` (${b.deployment})` : ''}`);
  whoami.textContent = s.who.identity;
  whoami.title = [`${s.who.identity} (${strip(s.who.kind).toLowerCase().replace('_', ' ') || 'identity'})`, ...roles].join('\n');
  const names = s.projects.map((p) => p.name).sort();
  const cur = project.get();
  if (cur && !s.projectsError && !names.includes(cur)) {
    project.clear();
    return true;
  }
  const want = ['', ...names];
  if (cur && !want.includes(cur)) want.push(cur);
  const have = [...switcher.options].map((o) => o.value);
  if (want.join('\n') !== have.join('\n')) {
    switcher.replaceChildren(...want.map((n) => h('option', { value: n }, n || 'All projects')));
  }
  switcher.value = cur;
  return false;
}

// chooseProject makes name ('' for all) the project of every call.
function chooseProject(name) {
  project.set(name);
  live.restart();
  render();
}

async function notFound(ctx) {
  return frag(header('Not found'), empty(`No page at #/${ctx.params[0]}.`), h('p', {}, link('#/', 'Back to the overview')));
}

async function overview(ctx) {
  ctx.watch('model', 'dataset', 'job', 'experiment', 'deployment', 'node');
  // Jobs and experiments are the chosen project's.
  const [models, datasets, js, xs, deps, nodes] = await settle([
    list('/v1/models', 'models'), list('/v1/datasets', 'datasets'), list(`/v1/jobs${inProject()}`, 'jobs'),
    list(`/v1/experiments${inProject()}`, 'experiments'), list('/v1/deployments', 'deployments'), list('/v1/nodes', 'nodes')]);
  const card = (r, href, label, extra) => h('a', { class: 'card', href, id: `count-${label.toLowerCase()}` },
    h('div', { class: 'n' }, r.ok ? r.value.length : '–'), h('div', { class: 'label' }, label),
    h('div', { class: 'extra' }, r.ok ? extra(r.value) : r.error.message));
  const count = (arr, f) => arr.filter(f).length;
  const recent = js.ok ? [...js.value].sort((a, b) => (b.create_time || '').localeCompare(a.create_time || '')).slice(0, 10) : [];
  const proj = project.get();
  return frag(
    header('Overview', proj ? `jobs and experiments of project ${proj}` : null),
    h('div', { class: 'cards' },
      card(models, '#/models', 'Models', (v) => `${v.reduce((s, m) => s + num(m.version_count), 0)} versions`),
      card(datasets, '#/datasets', 'Datasets', (v) => `${v.reduce((s, d) => s + num(d.latest_version), 0)} versions`),
      card(js, '#/jobs', 'Jobs', (v) => `${count(v, jobs.active)} active, ${count(v, (j) => j.state === 'JOB_STATE_FAILED')} failed`),
      card(xs, '#/experiments', 'Experiments', (v) => `${count(v, (x) => x.state === 'EXPERIMENT_STATE_RUNNING')} running`),
      card(deps, '#/deployments', 'Deployments', (v) => `${v.reduce((s, d) => s + num(d.status?.ready_replicas), 0)} ready replicas`),
      card(nodes, '#/nodes', 'Nodes', (v) => `${v.reduce((s, n) => s + (n.gpus?.length || 0), 0)} GPUs`)),
    h('h2', {}, proj ? `Recent jobs of ${proj}` : 'Recent jobs'),
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

signout.addEventListener('click', () => { token.clear(); project.clear(); session = null; live.restart(); render(); });
switcher.addEventListener('change', () => chooseProject(switcher.value));
window.addEventListener('bmaas:project', () => live.restart());
window.addEventListener('hashchange', () => {
  if (takeToken()) live.restart();
  render();
});
takeToken();
render();
live.start();

