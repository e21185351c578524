// Who is signed in and the projects they see: the header's identity and
// project switcher (session), and the Projects page with each project's
// roles, quota and use now.
import { api, list, settle, authConfig, project } from './api.js';
import { h, frag, header, table, link, empty, errorBox, fmtBytes, fmtNum, num, badge } from './ui.js';

// HOLDING are the job states that hold resources against a quota.
const HOLDING = ['JOB_STATE_SCHEDULED', 'JOB_STATE_RUNNING'];

// loadSession reads how the server signs people in and, when it asks a
// token, who the token is (GET /v1/whoami) and the projects they see
// (GET /v1/projects). A 401 fails it (the caller asks to sign in); a
// project list that fails leaves the switcher with "all projects" only.
export async function loadSession() {
  const config = await authConfig();
  if (!config.auth) return { config, who: null, projects: [] };
  const [who, ps] = await settle([api('/v1/whoami'), list('/v1/projects', 'projects')]);
  if (!who.ok) throw who.error;
  return { config, who: who.value, projects: ps.ok ? ps.value : [], projectsError: ps.ok ? null : ps.error };
}

// rolesIn are the roles bindings grant on project name: its own, and a
// cluster-wide one (project "*"); a role limited to one deployment says
// so.
export function rolesIn(bindings, name) {
  return (bindings || []).filter((b) => b.project === name || b.project === '*')
    .map((b) => (b.deployment ? `${b.role} (deployment ${b.deployment} only)` : b.role));
}

// projectOf is the project a job belongs to (a job of a platform older
// than projects is in "default").
export const projectOf = (j) => j.spec?.project || 'default';

// useOf is what name's scheduled and running jobs hold now: each of a
// job's workers holds its spec's resources.
export function useOf(jobs, name) {
  const u = { gpus: 0, gpu_memory_bytes: 0, cpu_millis: 0, memory_bytes: 0, jobs: 0 };
  for (const j of jobs) {
    if (projectOf(j) !== name || !HOLDING.includes(j.state)) continue;
    const r = j.spec?.resources || {};
    const w = Math.max(1, num(j.spec?.workers));
    u.gpus += num(r.gpus) * w;
    u.gpu_memory_bytes += num(r.gpu_memory_bytes) * w;
    u.cpu_millis += num(r.cpu_millis) * w;
    u.memory_bytes += num(r.memory_bytes) * w;
    u.jobs += 1;
  }
  return u;
}

const cores = (millis) => fmtNum(num(millis) / 1000, 3);

// RESOURCES are the quota's fields that running jobs use, with how each
// is written; LIMITS are its other fields, shown when set.
const RESOURCES = [
  { key: 'gpus', title: 'GPUs', fmt: fmtNum },
  { key: 'gpu_memory_bytes', title: 'GPU memory (shares)', fmt: fmtBytes },
  { key: 'cpu_millis', title: 'CPU cores', fmt: cores },
  { key: 'memory_bytes', title: 'Memory', fmt: fmtBytes },
  { key: 'jobs', title: 'Jobs running', fmt: fmtNum },
];
const LIMITS = [
  { key: 'deployments', title: 'Deployments', fmt: fmtNum },
  { key: 'replicas', title: 'Replicas', fmt: fmtNum },
  { key: 'storage_bytes', title: 'Storage', fmt: fmtBytes },
  { key: 'llm_tokens_per_minute', title: 'LLM tokens per minute', fmt: fmtNum },
];

// useText is "N of M" against a quota that is set, else N.
export function useText(used, quota, fmt) {
  return num(quota) > 0 ? `${fmt(used)} of ${fmt(quota)}` : fmt(used);
}

// meter is a bar of used against quota (nothing without a quota); a use
// over the quota is capacity borrowed while it is idle.
function meter(used, quota) {
  used = num(used); quota = num(quota);
  if (!(quota > 0)) return h('span', { class: 'muted' }, 'no quota');
  const pct = Math.min(100, (100 * used) / quota);
  const bar = h('div', { class: `bar${pct >= 90 ? ' high' : ''}`, title: `${((100 * used) / quota).toFixed(0)}%` }, h('span'));
  bar.firstChild.style.width = `${pct}%`;
  return h('div', { class: 'usage' }, bar, used > quota ? badge('BORROWING', 'more than the quota: idle capacity, reclaimed when a project within its quota needs it') : null);
}

function quotaTable(p, use) {
  const q = p.quota || {};
  const rows = [
    ...RESOURCES.map((r) => ({ ...r, used: use[r.key], quota: q[r.key], measured: true })),
    ...LIMITS.filter((r) => num(q[r.key]) > 0).map((r) => ({ ...r, quota: q[r.key], measured: false })),
  ];
  return table([
    { title: 'Resource', cell: (r) => r.title },
    { title: 'In use', num: true, cell: (r) => (r.measured ? useText(r.used, r.quota, r.fmt) : '') },
    { title: 'Quota', num: true, cell: (r) => (num(r.quota) > 0 ? r.fmt(r.quota) : '') },
    { title: '', cell: (r) => (r.measured ? meter(r.used, r.quota) : null) },
  ], rows, { id: `quota-${p.name}`, rowData: (r) => ({ resource: r.key }) });
}

// choose makes name the project the console works in and shows its jobs.
function choose(name) {
  project.set(name);
  window.dispatchEvent(new CustomEvent('bmaas:project'));
  location.hash = '#/jobs';
}

function projectSection(p, who, jobs) {
  const roles = rolesIn(who?.bindings, p.name);
  const current = project.get() === p.name;
  return h('section', { class: 'project panel', id: `project-${p.name}`, dataset: { project: p.name } },
    h('div', { class: 'head' },
      h('h2', {}, p.name),
      current ? badge('CURRENT', 'the project the console works in') : null,
      p.description ? h('span', { class: 'sub' }, p.description) : null,
      h('span', { class: 'spacer' }),
      current ? null : h('button', { class: 'btn', type: 'button', id: `use-${p.name}`, onclick: () => choose(p.name) }, 'Work in this project')),
    h('p', { class: 'roles' }, h('span', { class: 'muted' }, 'Your roles: '),
      roles.length ? roles.map((r) => h('span', { class: 'chip' }, r)) : h('span', { class: 'muted' }, 'none')),
    quotaTable(p, useOf(jobs, p.name)));
}

// projects is the Projects page: each project the identity sees, its
// roles on it, its quota and what its scheduled and running jobs hold
// now (over every project, whatever the switcher says).
export async function projects(ctx) {
  ctx.watch('job');
  const [who, ps, js] = await settle([api('/v1/whoami'), list('/v1/projects', 'projects'), list('/v1/jobs', 'jobs')]);
  if (!ps.ok) return frag(header('Projects'), errorBox(ps.error, 'Projects'));
  const all = [...ps.value].sort((a, b) => a.name.localeCompare(b.name));
  const jobs = js.ok ? js.value : [];
  return frag(
    header('Projects', `${all.length} you have a role in${who.ok ? `, as ${who.value.identity}` : ''}`),
    js.ok ? null : errorBox(js.error, 'Jobs (the use shown is not known)'),
    who.ok ? null : errorBox(who.error, 'Your roles'),
    h('p', { class: 'muted' }, 'A quota is what a project is guaranteed: its jobs may borrow idle capacity beyond it, which is reclaimed when a project within its quota needs it. Use is summed over the scheduled and running jobs, each worker holding its resources.'),
    all.length ? all.map((p) => projectSection(p, who.ok ? who.value : null, jobs))
      : empty('You have no role in any project.', 'An admin grants one: bmaas token create --identity NAME --role PROJECT=ROLE.'),
    h('p', {}, link('#/jobs', 'Jobs')));
}
