// The REST client of the console: every call goes to this origin's /v1
// API, with the bearer token kept in sessionStorage when the server asks
// for one, and the project chosen in the header's switcher sent as
// Bmaas-Project (the project a call works in when its request names none).

const KEY = 'bmaas.token';
const PROJECT_KEY = 'bmaas.project';

export const token = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (t) => sessionStorage.setItem(KEY, t.trim()),
  clear: () => sessionStorage.removeItem(KEY),
};

// project is the project the console works in ('': all the projects the
// identity sees).
export const project = {
  get: () => sessionStorage.getItem(PROJECT_KEY) || '',
  set: (p) => (p ? sessionStorage.setItem(PROJECT_KEY, p) : sessionStorage.removeItem(PROJECT_KEY)),
  clear: () => sessionStorage.removeItem(PROJECT_KEY),
};

// inProject is the query that lists only the chosen project's jobs or
// experiments (ListJobsRequest.project, ListExperimentsRequest.project),
// '' for all of them; sep is the character before it.
export function inProject(sep = '?') {
  const p = project.get();
  return p ? `${sep}project=${encodeURIComponent(p)}` : '';
}

// authHeaders are the headers every call sends: the bearer token and
// the project, where there are.
export function authHeaders(extra = {}) {
  const headers = { ...extra };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  const p = project.get();
  if (p) headers['Bmaas-Project'] = p;
  return headers;
}

// ApiError is an error answer of the API: the HTTP status and the
// google.rpc.Status every /v1 route answers
// ({"code":5,"message":"model \"x\" not found","details":[]}).
export class ApiError extends Error {
  constructor(status, message, code, details = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  // reason is the google.rpc.ErrorInfo reason of the answer, or ''.
  get reason() {
    const info = this.details.find((d) => d?.['@type']?.endsWith('google.rpc.ErrorInfo'));
    return info?.reason || '';
  }
}

// statusOf reads an error body: its message, code and details, or the
// text of a body that is not one (a proxy's page).
function statusOf(text, fallback) {
  let data = null;
  try { data = JSON.parse(text); } catch { data = null; }
  if (typeof data?.message === 'string' && data.message) {
    return { msg: data.message, code: data.code, details: Array.isArray(data.details) ? data.details : [] };
  }
  return { msg: text.trim() || fallback, code: undefined, details: [] };
}

// AuthError is a 401: the server wants a (valid) bearer token.
export class AuthError extends ApiError {}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the server: ${e.message}`);
  }
  const text = await resp.text();
  if (!resp.ok) {
    const { msg, code, details } = statusOf(text, resp.statusText);
    throw new (resp.status === 401 ? AuthError : ApiError)(resp.status, msg, code, details);
  }
  if (!text) return {};
  try { return JSON.parse(text); } catch { return {}; }
}

// stream reads a server-streaming call over REST (newline-delimited JSON,
// one {"result": ...} or {"error": ...} object per line) and returns its
// results.
export async function stream(path) {
  const headers = authHeaders({ Accept: 'application/json' });
  let resp;
  try {
    resp = await fetch(path, { headers, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, `cannot reach the server: ${e.message}`);
  }
  const text = await resp.text();
  const objs = text.split('\n').filter((l) => l.trim()).map((l) => {
    try { return JSON.parse(l); } catch { return { error: { message: l } }; }
  });
  const failed = objs.find((o) => o.error) || (!resp.ok ? objs[0] || {} : null);
  if (failed) {
    const e = failed.error || failed;
    const msg = e.message || resp.statusText;
    if (resp.status === 401) throw new AuthError(401, msg);
    throw new ApiError(resp.ok ? 500 : resp.status, msg, e.code);
  }
  return objs.map((o) => o.result || {});
}

// list follows next_page_token and returns up to max items of key.
export async function list(path, key, max = 5000) {
  const out = [];
  let page = '';
  do {
    const sep = path.includes('?') ? '&' : '?';
    const q = `${sep}page_size=1000${page ? `&page_token=${encodeURIComponent(page)}` : ''}`;
    const r = await api(path + q);
    out.push(...(r[key] || []));
    page = r.next_page_token || '';
  } while (page && out.length < max);
  return out;
}

// settle runs the calls in parallel and keeps each result or error, so one
// failing part of a page does not blank the rest. A 401 still fails all.
export async function settle(calls) {
  const rs = await Promise.allSettled(calls);
  for (const r of rs) if (r.status === 'rejected' && r.reason instanceof AuthError) throw r.reason;
  return rs.map((r) => (r.status === 'fulfilled' ? { ok: true, value: r.value } : { ok: false, error: r.reason }));
}

export const enc = encodeURIComponent;

// download fetches a file with the token and hands it to the browser.
export async function download(path, filename) {
  const resp = await fetch(path, { headers: authHeaders() });
  if (!resp.ok) {
    const { msg, code, details } = statusOf(await resp.text(), resp.statusText);
    throw new (resp.status === 401 ? AuthError : ApiError)(resp.status, msg, code, details);
  }
  const url = URL.createObjectURL(await resp.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// upload sends a file as the raw body of a PUT (the registry's upload
// routes stream any size) with the token, and returns the JSON answer.
export async function upload(path, file, contentType) {
  const headers = authHeaders({ Accept: 'application/json', 'Content-Type': contentType });
  let resp;
  try {
    resp = await fetch(path, { method: 'PUT', headers, body: file, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, `cannot reach the server: ${e.message}`);
  }
  const text = await resp.text();
  if (!resp.ok) {
    const { msg, code, details } = statusOf(text, resp.statusText);
    throw new (resp.status === 401 ? AuthError : ApiError)(resp.status, msg, code, details);
  }
  try { return JSON.parse(text); } catch { return {}; }
}

// authConfig is how the server signs people in (GET /v1/auth-config, which
// needs no token and is asked without one, so that a stale token cannot
// hide the sign-in's choices): {auth, oidc_issuer, oidc_web_login, ...}.
// It is read once per page load.
let configOnce = null;
export function authConfig() {
  if (!configOnce) {
    configOnce = (async () => {
      let resp;
      try {
        resp = await fetch('/v1/auth-config', { headers: { Accept: 'application/json' }, cache: 'no-store' });
      } catch (e) {
        throw new ApiError(0, `cannot reach the server: ${e.message}`);
      }
      const text = await resp.text();
      if (!resp.ok) {
        const { msg, code, details } = statusOf(text, resp.statusText);
        throw new ApiError(resp.status, msg, code, details);
      }
      try { return JSON.parse(text); } catch { return {}; }
    })();
    configOnce.catch(() => { configOnce = null; });
  }
  return configOnce;
}
