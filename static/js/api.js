// The REST API from the browser: JSON in and out, problem+json turned
// into ApiError, and the session.
//
// The access token lives in this module's memory only.  The refresh
// token never reaches JavaScript: login asks for it as the HttpOnly
// agora_refresh cookie (doc/web-ui.md), which the browser sends to
// /api/v1/auth/refresh and /api/v1/auth/logout alone.  A reload
// therefore starts with no access token and trades the cookie for one.

const BASE = '/api/v1';
// Whether this browser holds a session cookie: the cookie itself cannot
// be read, and asking the server without one only earns a 401 (which
// the browser logs as an error on every anonymous page view).
const FLAG = 'agora.session';

let access = null;
let claims = null;
let refreshing = null;
const watchers = new Set();

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code || null;
  }

  // The field errors of a 422, as [{field, message}].
  get fields() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

function decodeClaims(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

function setAccess(token) {
  access = token;
  claims = token ? decodeClaims(token) : null;
  try {
    if (token) localStorage.setItem(FLAG, '1');
    else localStorage.removeItem(FLAG);
  } catch {
    // Storage may be off (private mode): sessions then end on reload.
  }
  for (const fn of watchers) fn(session());
}

// {id, role} of the signed-in user, or null.
export function session() {
  return claims ? { id: String(claims.sub), role: claims.role } : null;
}

export function onSession(fn) {
  watchers.add(fn);
  return () => watchers.delete(fn);
}

async function parse(res) {
  const type = res.headers.get('Content-Type') || '';
  if (res.status === 204) return null;
  if (type.includes('json')) return res.json();
  return res;
}

async function send(method, path, body, opts) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (access && !opts.anonymous) headers.Authorization = `Bearer ${access}`;
  const init = { method, headers, signal: opts.signal, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(BASE + path, init);
}

// One request.  A 401 with an access token held means it expired: the
// cookie buys a new one and the request is sent once more.
export async function api(method, path, body, opts = {}) {
  let res = await send(method, path, body, opts);
  if (res.status === 401 && access && !opts.anonymous) {
    if (await refresh()) res = await send(method, path, body, opts);
  }
  if (opts.raw && res.ok) return res;
  const data = await parse(res);
  if (!res.ok) throw new ApiError(res.status, data && !(data instanceof Response) ? data : null);
  return data;
}

export const get = (path, opts) => api('GET', path, undefined, opts);

async function refreshNow() {
  const res = await fetch(`${BASE}/auth/refresh`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: '{}',
  });
  // A refusal (the cookie is gone, used or revoked) ends the session; a
  // busy or failing server does not: the cookie may still be good.
  if (res.status >= 400 && res.status < 500 && res.status !== 429) setAccess(null);
  if (!res.ok) return false;
  setAccess((await res.json()).access_token);
  return true;
}

// Trade the cookie for a new access token; one refresh at a time in this
// tab, and across tabs too where the browser has Web Locks: a refresh
// token is single use, and presenting a used one ends the whole session.
export function refresh() {
  if (!refreshing) {
    const run = navigator.locks
      ? navigator.locks.request('agora-refresh', refreshNow)
      : refreshNow();
    refreshing = run.catch(() => false).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// At start: a session kept in the cookie, if this browser had one, or
// if a sign-in with a provider (expectSession) has come back without
// an error: its callback set the cookie while this page was away.
export async function restore() {
  let had = null;
  try {
    had = localStorage.getItem(FLAG);
    if (had === '2' && new URLSearchParams(location.search).has('sign_in_error')) {
      localStorage.removeItem(FLAG);
      had = null;
    }
  } catch {
    had = null;
  }
  if (had) await refresh();
  return session();
}

// Before leaving for a provider's sign-in, with no session here (a
// session another tab holds keeps its flag).
export function expectSession() {
  try {
    if (!localStorage.getItem(FLAG)) localStorage.setItem(FLAG, '2');
  } catch {
    // Storage may be off (private mode): the sign-in then needs a reload.
  }
}

export async function login(email, password) {
  const pair = await api('POST', '/auth/login', { email, password, refresh_token_cookie: true },
    { anonymous: true });
  setAccess(pair.access_token);
  return session();
}

// Logout needs the access token as well as the cookie; the cookie's
// family is revoked and the cookie cleared.  Locally the session ends
// whatever the answer.
export async function logout() {
  try {
    await api('POST', '/auth/logout', {});
  } catch {
    // Already over on the server (expired, revoked): nothing to undo.
  } finally {
    setAccess(null);
  }
}

// A random id for the analytics session of this tab.
function visitId() {
  try {
    let id = sessionStorage.getItem('agora.visit');
    if (!id) {
      id = crypto.randomUUID();
      sessionStorage.setItem('agora.visit', id);
    }
    return id;
  } catch {
    return 'no-storage';
  }
}

// Funnel events for the analytics summary; lost quietly when they fail,
// since a shopper must never see an error for them.
export function track(type, productId) {
  const body = [{ type, session_id: visitId(), product_id: productId || null }];
  api('POST', '/analytics/events', body).catch(() => {});
}
