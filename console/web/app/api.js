// The API client: every call goes through `api()`, which sends the console header, the
// access token (held in this module's memory only, never in storage) and turns error answers
// into ApiError. The refresh token lives in the httpOnly `sdsim_refresh` cookie the gateway
// sets for console requests; `restore()` and the timer below use it to get a new access token.

const HEADER = { 'X-Sdsim-Console': '1' };
let accessToken = null;
let refreshTimer = null;
let currentUser = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, body, headers) {
    const e = (body && body.error) || {};
    super(e.message || `request failed (${status})`);
    this.status = status;
    this.code = e.code || String(status);
    this.field = e.field || null;
    this.body = body;
    this.currentVersion = e.current_version ?? null;
    this.headers = headers;
  }
}

export function user() { return currentUser; }
export function token() { return accessToken; }
export function onSession(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function emit() { for (const fn of listeners) fn(currentUser); }

function setSession(body) {
  accessToken = body.access_token;
  if (body.user) currentUser = body.user;
  clearTimeout(refreshTimer);
  // Refresh at 80% of the lifetime (at least 5 s before it runs out).
  const ms = Math.max(5, Math.min(body.expires_in * 0.8, body.expires_in - 5)) * 1000;
  refreshTimer = setTimeout(scheduledRefresh, ms);
  emit();
}

// The timer's refresh: only a refusal (the session ended) signs the page out. A network
// error (offline, a gateway restarting) tries again, at once when the browser is back online,
// else in a few seconds; a request meanwhile that gets 401 refreshes by itself.
function scheduledRefresh() {
  refresh().catch((e) => {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) { dropSession(); return; }
    if (!accessToken) return;
    clearTimeout(refreshTimer);
    if (navigator.onLine === false) window.addEventListener('online', scheduledRefresh, { once: true });
    else refreshTimer = setTimeout(scheduledRefresh, 3000);
  });
}

function dropSession() {
  accessToken = null;
  currentUser = null;
  clearTimeout(refreshTimer);
  emit();
}

let refreshing = null;
/** A new access token from the refresh cookie; one request at a time. */
export function refresh() {
  if (!refreshing) {
    // Refresh tokens rotate, and using one twice ends the session (reuse detection): tabs of
    // this page share the cookie, so they take turns through a Web Lock. The cookie is read
    // when the request leaves, so each tab sends the one the previous refresh set.
    const call = () => raw('POST', '/api/auth/refresh', undefined, {}, false);
    const run = navigator.locks ? navigator.locks.request('sdsim-refresh', call) : call();
    refreshing = run
      .then(({ body }) => { setSession(body); return true; })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** On page load: the session the cookie still holds, if any. */
export async function restore() {
  try {
    await refresh();
    if (!currentUser || !currentUser.email) {
      const { body } = await raw('GET', '/api/auth/profile');
      currentUser = body.user; emit();
    }
    return true;
  } catch { dropSession(); return false; }
}

async function raw(method, path, body, extraHeaders = {}, auth = true) {
  const headers = { ...HEADER, ...extraHeaders };
  if (auth && accessToken) headers.Authorization = `Bearer ${accessToken}`;
  let payload;
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  const text = await res.text();
  let json = null;
  if (text) { try { json = JSON.parse(text); } catch { json = { text }; } }
  if (!res.ok) throw new ApiError(res.status, json, res.headers);
  return { body: json, text, headers: res.headers, status: res.status };
}

/**
 * An API call. A 401 with a session (an expired token) refreshes once and retries.
 * Returns the parsed body; `full: true` returns {body, text, headers, status}; `text: true`
 * the body as text (CSV).
 */
export async function api(method, path, body, opts = {}) {
  try {
    const r = await raw(method, path, body, opts.headers);
    if (opts.text) return r.text;
    return opts.full ? r : r.body;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && accessToken && !opts.retried) {
      try { await refresh(); } catch (r) {
        // Signed out only when the refresh is refused; a network error keeps the session.
        if (r instanceof ApiError && (r.status === 401 || r.status === 403)) dropSession();
        throw e;
      }
      return api(method, path, body, { ...opts, retried: true });
    }
    throw e;
  }
}

export async function login(email, password) {
  const { body } = await raw('POST', '/api/auth/login', { email, password }, {}, false);
  setSession(body);
  return body.user;
}

// Tabs of this page hear of a logout in any of them and leave the session too.
const tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel('sdsim-auth') : null;
if (tabs) tabs.onmessage = (m) => { if (m.data === 'logout' && accessToken) dropSession(); };

/**
 * Ends the session on the server (its refresh cookie cleared), then here and in every tab.
 * An expired token is refreshed first; if the server cannot be reached the session lives on
 * and this throws, so the page says so instead of looking signed out.
 */
export async function logout() {
  try {
    await api('POST', '/api/auth/logout');
  } catch (e) {
    // Refused even after a refresh: the session had already ended on the server.
    if (!(e instanceof ApiError && (e.status === 401 || e.status === 403))) throw e;
  }
  dropSession();
  if (tabs) tabs.postMessage('logout');
}

export function setUser(u) { currentUser = u; emit(); }
