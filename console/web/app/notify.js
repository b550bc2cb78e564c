// Notifications: the /ws/notifications socket (authenticated by its first frame, reconnected
// with backoff and a fresh token), toasts for what arrives, the bell's unread count and the inbox.
import { api, token, refresh, user } from './api.js';
import { h, toast, fmtDate, errorText, clear } from './ui.js';

let ws = null;
let stopped = true;
let retry = 0;
let retryTimer = null;
let connects = 0;
let unread = 0;
const bellBadges = new Set();
const CONTROL = new Set(['auth_ok', 'pong', 'error', 'ping']);

function setUnread(n) {
  unread = Math.max(0, n);
  for (const b of bellBadges) {
    // A badge of a top bar drawn again since is gone from the page: forgotten.
    if (!b.isConnected) { bellBadges.delete(b); continue; }
    b.textContent = unread ? String(unread) : ''; b.hidden = !unread;
  }
}

export function bell() {
  const badge = h('span', { class: 'count', 'aria-label': 'unread notifications' });
  for (const b of bellBadges) if (!b.isConnected) bellBadges.delete(b);
  bellBadges.add(badge);
  badge.hidden = !unread; badge.textContent = unread ? String(unread) : '';
  return h('a', { href: '/inbox', class: 'bell', 'aria-label': 'Notifications' },
    h('svg', { svg: true, viewBox: '0 0 24 24', width: 18, height: 18, 'aria-hidden': 'true' },
      h('path', { svg: true, d: 'M6 16V11a6 6 0 1 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0', fill: 'none', stroke: 'currentColor', 'stroke-width': 2 })), badge);
}

// The server's unread count. An event that arrives while it is being read may or may not be
// in the answer: it is not added on top; the count is read once more instead.
let counting = null; let recount = false;
function loadCount() {
  if (counting) { recount = true; return counting; }
  counting = (async () => {
    do {
      recount = false;
      try { const r = await api('GET', '/api/notifications?limit=1&unread=true'); setUnread(r.unread_count); } catch { /* offline */ }
    } while (recount);
    counting = null;
  })();
  return counting;
}

export function startNotifications() {
  stopped = false;
  connects = 0;
  loadCount();
  window.addEventListener('offline', onOffline);
  window.addEventListener('online', onOnline);
  window.sdsimDebug = { ...(window.sdsimDebug || {}), dropNotify: () => drop() };
  connect();
}

export function stopNotifications() {
  stopped = true;
  clearTimeout(retryTimer);
  window.removeEventListener('offline', onOffline);
  window.removeEventListener('online', onOnline);
  if (window.sdsimDebug) delete window.sdsimDebug.dropNotify;
  if (ws) { ws.onclose = null; ws.close(1000); ws = null; }
  delete document.body.dataset.ws;
  setUnread(0);
}

// A page that goes offline has a dead socket even before the browser says so: drop it, and
// connect again as soon as the network is back.
function onOffline() { drop(); }
function onOnline() {
  if (stopped || ws) return;
  clearTimeout(retryTimer); retry = 0; connect();
}

/** Drops the socket as a lost connection would (it reconnects by itself). */
function drop() {
  const sock = ws;
  if (!sock) return;
  sock.onclose = null; sock.onmessage = null;
  sock.close(4000, 'dropped by the page');
  lost(sock, 4000, null);
}

function connect() {
  // A browser without WebSocket has no live notifications (the bell and the inbox still load
  // by REST); without this check its ReferenceError broke the sign-in the session emits from.
  if (stopped || !token() || typeof WebSocket !== 'function') return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(`${proto}//${location.host}/ws/notifications`);
  const reconnect = connects++ > 0;
  let used = null;
  ws = sock;
  sock.onopen = () => { used = token(); sock.send(JSON.stringify({ type: 'auth', token: used })); };
  sock.onmessage = (m) => {
    let f; try { f = JSON.parse(m.data); } catch { return; }
    if (f.type === 'auth_ok') {
      retry = 0; document.body.dataset.ws = 'open';
      // What arrived while the socket was down is in the inbox: the bell counts it.
      if (reconnect) loadCount();
      return;
    }
    if (CONTROL.has(f.type)) return;
    onEvent(f);
  };
  sock.onclose = (e) => lost(sock, e.code, used);
}

async function lost(sock, code, used) {
  if (ws !== sock) return;
  ws = null;
  delete document.body.dataset.ws;
  if (stopped) return;
  // Expired (4009) or refused (4001): a fresh token first, unless the page already has a
  // newer one than the socket used (it refreshes before expiry by itself).
  if ((code === 4009 || code === 4001) && (!used || used === token())) { try { await refresh(); } catch { return; } }
  if (stopped || ws) return;
  if (!navigator.onLine) return; // the online event reconnects
  const delay = Math.min(30000, 500 * 2 ** retry++) * (0.5 + Math.random() / 2);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

function onEvent(f) {
  const d = f.data || {};
  const title = d.title || (f.type === 'project.shared' && d.project_name ? `"${d.project_name}" was shared with you as ${d.access_level}` : f.type);
  const link = d.link ? new URL(d.link, location.href).pathname : null;
  const t = toast(link ? h('a', { href: link }, 'Open') : '', 'info', { title, ms: 8000 });
  t.classList.add('notification');
  if (counting) recount = true; else setUnread(unread + 1);
  window.dispatchEvent(new CustomEvent('sdsim:notification', { detail: f }));
}

export async function inboxView(el) {
  el.append(h('h1', {}, 'Notifications'));
  const list = h('ul', { class: 'inbox', 'aria-live': 'polite' });
  const markAll = h('button', { type: 'button', onclick: async () => {
    try { const r = await api('POST', '/api/notifications/read', { all: true }); setUnread(r.unread_count); load(); } catch (e) { toast(`Not marked: ${errorText(e)}`, 'error'); }
  } }, 'Mark all as read');
  el.append(h('div', { class: 'toolbar' }, markAll), list);
  async function load() {
    clear(list);
    try {
      const r = await api('GET', '/api/notifications?limit=100');
      setUnread(r.unread_count);
      if (!r.notifications.length) list.append(h('li', { class: 'empty' }, 'Nothing here yet.'));
      for (const n of r.notifications) {
        const link = n.link ? new URL(n.link, location.href).pathname : null;
        list.append(h('li', { class: n.read_at ? 'read' : 'unread' },
          h('div', {}, link ? h('a', { href: link, onclick: () => api('POST', '/api/notifications/read', { ids: [n.id] }).catch(() => {}) }, n.title) : n.title),
          n.body ? h('p', {}, n.body) : null,
          h('small', {}, fmtDate(n.created_at)),
          n.read_at ? null : h('button', { type: 'button', class: 'link', onclick: async () => {
            try { const x = await api('POST', '/api/notifications/read', { ids: [n.id] }); setUnread(x.unread_count); load(); } catch (e) { toast(`Not marked: ${errorText(e)}`, 'error'); }
          } }, 'Mark as read')));
      }
    } catch (e) { list.append(h('li', { class: 'error' }, errorText(e))); }
  }
  const onN = () => load();
  window.addEventListener('sdsim:notification', onN);
  await load();
  return () => window.removeEventListener('sdsim:notification', onN);
}

export { user };
