// DOM and formatting helpers shared by the views. Data is always inserted
// as text, never as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export const frag = (...children) => h('div', { class: 'view' }, ...children);
export const link = (href, text, attrs = {}) => h('a', { href, ...attrs }, text);
export const num = (x) => Number(x ?? 0);
export const strip = (s) => String(s || '').replace(/^[A-Z]+(_[A-Z]+)*?_STATE_|^VERSION_STATUS_|^MODEL_FORMAT_|^TASK_TYPE_|^PARAM_TYPE_|^DATA_TYPE_|^VALUE_KIND_/, '');

export function fmtTime(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime()) || d.getTime() <= 0) return '';
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function fmtAgo(ts) {
  if (!ts) return '';
  const s = (Date.now() - new Date(ts).getTime()) / 1000;
  if (!Number.isFinite(s)) return '';
  if (s < 5) return 'just now';
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

// time is a local timestamp with the ISO one in its tooltip.
export const time = (ts) => (ts ? h('time', { datetime: ts, title: `${new Date(ts).toISOString()} (${fmtAgo(ts)})` }, fmtTime(ts)) : '');

export function fmtDuration(ms) {
  if (!(ms >= 0)) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function fmtBytes(n) {
  n = num(n);
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtNum(x, digits = 4) {
  if (x === undefined || x === null || x === '') return '';
  const n = Number(x);
  if (!Number.isFinite(n)) return String(x);
  if (Number.isInteger(n)) return n.toLocaleString();
  const a = Math.abs(n);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return n.toExponential(2);
  return String(Number(n.toPrecision(digits)));
}

export const cpu = (millis) => `${fmtNum(num(millis) / 1000, 3)} CPU`;

const tones = {
  ok: ['READY', 'SUCCEEDED'],
  run: ['RUNNING', 'SCHEDULED', 'STARTING', 'CREATING', 'SCALING', 'ROLLING_OUT', 'PENDING'],
  warn: ['QUEUED', 'PAUSED', 'STOPPED'],
  bad: ['FAILED', 'ERROR'],
};

export function badge(state, title) {
  const s = strip(state) || 'UNKNOWN';
  const tone = Object.keys(tones).find((k) => tones[k].includes(s)) || '';
  return h('span', { class: `badge ${tone}`, title }, s.replaceAll('_', ' ').toLowerCase());
}

export const chips = (m) => Object.entries(m || {}).map(([k, v]) => h('span', { class: 'chip' }, v === '' ? k : `${k}=${v}`));
export const mono = (s) => h('code', {}, s);
export const short = (s, n = 12) => (s && s.length > n ? h('code', { title: s }, `${s.slice(0, n)}…`) : mono(s || ''));

export function empty(msg, hint) {
  return h('div', { class: 'empty' }, h('div', {}, msg), hint ? h('div', { class: 'muted' }, hint) : null);
}

export function errorBox(err, what) {
  const status = err?.status ? `HTTP ${err.status}` : 'Error';
  return h('div', { class: 'error', role: 'alert' },
    h('strong', {}, what ? `${what}: ${status}` : status), err?.message || String(err));
}

// table: cols are {title, cell: row => node|string, num?: bool, name?: bool
// (the title is a metric or parameter name, shown as is)}; opts.empty
// is shown in place of an empty table, opts.rowClass names a row's class.
export function table(cols, rows, opts = {}) {
  if (!rows.length) return empty(opts.empty || 'Nothing here yet.', opts.hint);
  const head = h('tr', {}, cols.map((c) => h('th', { class: [c.num ? 'num' : '', c.name ? 'name' : ''].join(' ').trim() || null }, c.title)));
  const body = rows.map((r) => h('tr', { class: opts.rowClass?.(r), dataset: opts.rowData?.(r) },
    cols.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(r)))));
  return h('div', { class: 'table-wrap' }, h('table', { id: opts.id }, h('thead', {}, head), h('tbody', {}, body)));
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter((p) => p && p[1] !== undefined && p[1] !== null && p[1] !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export const section = (title, ...body) => h('section', {}, h('h2', {}, title), ...body);
export const panel = (...body) => h('div', { class: 'panel' }, ...body);

export function header(title, sub, crumbs, actions) {
  document.title = `${title} · bmaas`;
  return h('div', {},
    crumbs ? h('div', { class: 'crumbs' }, crumbs.flatMap((c, i) => (i ? [' / ', c] : [c]))) : null,
    h('div', { class: 'head' }, h('h1', {}, title), sub ? h('span', { class: 'sub' }, sub) : null, actions || null));
}

// part renders a settled call: its value through fn, or its error.
export const part = (r, fn, what) => (r.ok ? fn(r.value) : errorBox(r.error, what));

export function usage(used, total, fmt, label) {
  used = num(used); total = num(total);
  const pct = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  const bar = h('div', { class: `bar${pct >= 90 ? ' high' : ''}`, title: `${pct.toFixed(0)}%` }, h('span'));
  bar.firstChild.style.width = `${pct}%`;
  return h('div', { class: 'usage', 'aria-label': label }, bar, h('span', { class: 'txt' }, `${fmt(used)} / ${fmt(total)}`));
}

export const json = (v) => h('pre', { class: 'json' }, JSON.stringify(v, null, 2));

// action is a button that calls the API, then draws the page again; an
// error shows in out.
export function action(id, label, out, call, ctx, cls = 'btn') {
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

// PAGE_ROWS is how many rows a long table draws at once: a table of
// 1,000 rows holds the browser's main thread for about a second.
export const PAGE_ROWS = 100;

// paged picks page n (from 1; clamped, so a stale link still shows
// rows) of rows, and a pager: the rows shown of how many, with links
// (href(page)) to the pages before and after.
export function paged(rows, n, href, id) {
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
  const p = Math.min(Math.max(1, Number.parseInt(n, 10) || 1), pages);
  const from = (p - 1) * PAGE_ROWS;
  const shown = rows.slice(from, from + PAGE_ROWS);
  const nav = pages < 2 ? null : h('div', { class: 'toolbar pager', id, dataset: { page: String(p), pages: String(pages) } },
    p > 1 ? link(href(p - 1), '← previous', { class: 'chip', rel: 'prev' }) : null,
    h('span', { class: 'muted' }, `${from + 1}–${from + shown.length} of ${rows.length}`),
    p < pages ? link(href(p + 1), 'next →', { class: 'chip', rel: 'next' }) : null);
  return { rows: shown, nav };
}
