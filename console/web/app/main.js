// The page's entry: restores the session, draws the top bar and routes paths to views.
import * as auth from './api.js';
import { h, clear, toast, errorText } from './ui.js';
import { startNotifications, stopNotifications, bell } from './notify.js';

const routes = [];
function route(pattern, load, opts = {}) {
  const keys = [];
  const re = new RegExp('^' + pattern.replace(/:(\w+)/g, (_, k) => { keys.push(k); return '([^/]+)'; }) + '/?$');
  routes.push({ re, keys, load, ...opts });
}

route('/', () => import('./views/projects.js').then((m) => m.projectsView), { auth: true });
route('/projects', () => import('./views/projects.js').then((m) => m.projectsView), { auth: true });
route('/projects/:id', () => import('./views/editor.js').then((m) => m.editorView), { auth: true });
route('/links/:token', () => import('./views/editor.js').then((m) => m.linkView), { auth: true });
route('/login', () => import('./views/auth.js').then((m) => m.loginView));
route('/register', () => import('./views/auth.js').then((m) => m.registerView));
route('/forgot-password', () => import('./views/auth.js').then((m) => m.forgotView));
route('/verify-email', () => import('./views/auth.js').then((m) => m.verifyView));
route('/reset-password', () => import('./views/auth.js').then((m) => m.resetView));
route('/profile', () => import('./views/auth.js').then((m) => m.profileView), { auth: true });
route('/inbox', () => import('./notify.js').then((m) => m.inboxView), { auth: true });

let cleanup = null;
const main = () => document.getElementById('main');

export function navigate(path, replace = false) {
  if (replace) history.replaceState({}, '', path); else history.pushState({}, '', path);
  render();
}

/** A view may refuse to be left (unsaved changes): it sets this to a function returning false. */
export const guard = { leave: null };

// Each render draws into its own element (display: contents): one overtaken by a later
// navigation while it loads is left detached and its view's cleanup is called at once, so
// two views never share the page or leave sockets and timers running.
let rendering = 0;
async function render() {
  const seq = ++rendering;
  const path = location.pathname;
  const r = routes.find((x) => x.re.test(path));
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  const el = h('div', { class: 'view' });
  clear(main()).append(el);
  document.body.classList.remove('editing');
  if (!r) { el.append(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/' }, 'Back to your projects'))); return; }
  if (r.auth && !auth.user()) {
    navigate(`/login?next=${encodeURIComponent(path + location.search)}`, true);
    return;
  }
  const params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(path.match(r.re)[i + 1])]));
  let done = null;
  try {
    const view = await r.load();
    if (seq !== rendering) return;
    done = (await view(el, params, new URLSearchParams(location.search))) || null;
  } catch (e) {
    if (seq === rendering) el.append(h('h1', {}, 'This page did not load'), h('p', { class: 'error' }, errorText(e) || String(e)), h('p', {}, h('a', { href: location.pathname }, 'Try again')));
    return;
  }
  if (seq !== rendering) { try { done?.(); } catch { /* ignore */ } return; }
  cleanup = done;
  const h1 = el.querySelector('h1');
  document.title = h1 ? `${h1.textContent} · sdsim` : 'sdsim console';
}

function topbar() {
  const bar = clear(document.getElementById('topbar'));
  const u = auth.user();
  bar.append(h('a', { href: '/', class: 'brand' }, h('img', { src: '/icons/logo.svg', alt: '', width: 22, height: 22 }), 'sdsim'));
  const nav = h('nav', { 'aria-label': 'Main' });
  if (u) {
    nav.append(
      h('a', { href: '/projects' }, 'Projects'),
      bell(),
      h('a', { href: '/profile', class: 'who' }, u.first_name || u.email),
      h('button', { type: 'button', class: 'link', onclick: async () => {
        try { await auth.logout(); navigate('/login'); } catch (e) { toast(`Not logged out: ${errorText(e)}. Try again.`, 'error'); }
      } }, 'Log out'),
    );
  } else {
    nav.append(h('a', { href: '/login' }, 'Log in'), h('a', { href: '/register' }, 'Register'));
  }
  bar.append(nav);
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download') || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  e.preventDefault();
  if (guard.leave && !guard.leave()) return;
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);

let lastUser = null;
auth.onSession((u) => {
  topbar();
  const id = u && u.id;
  if (id !== lastUser) {
    const ended = lastUser && !id;
    lastUser = id;
    if (id) startNotifications(); else stopNotifications();
    // The session ended under the page (logged out elsewhere, expired): back to signing in.
    if (ended && document.body.dataset.ready) render();
  }
});

(async () => {
  await auth.restore();
  topbar();
  await render();
  document.body.dataset.ready = '1';
})();
