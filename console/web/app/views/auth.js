// Signing in and out, registering, the e-mail links (verify, reset) and the profile.
import * as auth from '../api.js';
import { api } from '../api.js';
import { h, field, errorText, toast, fmtDate } from '../ui.js';
import { navigate } from '../main.js';

function form(title, fields, submitLabel, onSubmit, extra = []) {
  const err = h('p', { class: 'error', role: 'alert' });
  const btn = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const f = h('form', { class: 'card narrow', novalidate: false }, h('h1', {}, title), ...fields, err, h('div', { class: 'actions' }, btn), ...extra);
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    btn.disabled = true;
    try { await onSubmit(err); } catch (x) { err.textContent = errorText(x); } finally { btn.disabled = false; }
  });
  return f;
}

const input = (name, type = 'text', attrs = {}) => h('input', { name, type, required: true, ...attrs });

export function loginView(el, _p, q) {
  const email = input('email', 'email', { autocomplete: 'username', autofocus: true });
  const password = input('password', 'password', { autocomplete: 'current-password' });
  el.append(form('Log in', [field('E-mail', email), field('Password', password)], 'Log in', async () => {
    await auth.login(email.value.trim(), password.value);
    const next = q.get('next');
    navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/projects', true);
  }, [h('p', {}, h('a', { href: '/register' }, 'Create an account'), ' · ', h('a', { href: '/forgot-password' }, 'Forgot your password?'))]));
}

export function registerView(el) {
  const first = input('first_name', 'text', { autocomplete: 'given-name', autofocus: true });
  const last = input('last_name', 'text', { autocomplete: 'family-name' });
  const company = h('input', { name: 'company', type: 'text', autocomplete: 'organization' });
  const email = input('email', 'email', { autocomplete: 'email' });
  const password = input('password', 'password', { autocomplete: 'new-password', minlength: 8 });
  el.append(form('Create an account', [field('First name', first), field('Last name', last), field('Company (optional)', company), field('E-mail', email), field('Password', password, 'At least 8 characters; longer is stronger.')], 'Register', async () => {
    await api('POST', '/api/auth/register', {
      email: email.value.trim(), password: password.value, first_name: first.value.trim(), last_name: last.value.trim(),
      company: company.value.trim() || undefined,
    });
    // Registering does not mail by itself: sign in and ask for the verification link.
    let sent = false;
    try {
      await auth.login(email.value.trim(), password.value);
      sent = (await api('POST', '/api/auth/verify-email/request')).sent;
    } catch { /* the account exists; the person can log in and ask again from the profile */ }
    el.replaceChildren(h('section', { class: 'card narrow', id: 'registered' }, h('h1', {}, 'Check your e-mail'),
      h('p', {}, sent ? `We sent a link to ${email.value.trim()}. Follow it to verify your address.` : 'Your account is ready. Log in, then ask for the verification link from your profile.'),
      h('p', {}, auth.user() ? h('a', { href: '/projects' }, 'Go to your projects') : h('a', { href: '/login' }, 'Log in'))));
  }, [h('p', {}, 'Already have an account? ', h('a', { href: '/login' }, 'Log in'))]));
}

export function forgotView(el) {
  const email = input('email', 'email', { autocomplete: 'email', autofocus: true });
  el.append(form('Reset your password', [field('E-mail', email)], 'Send the link', async (err) => {
    await api('POST', '/api/auth/password-reset/request', { email: email.value.trim() });
    err.textContent = '';
    el.replaceChildren(h('section', { class: 'card narrow' }, h('h1', {}, 'Check your e-mail'), h('p', {}, 'If an account has this address, a link to reset its password is on its way.')));
  }));
}

export async function verifyView(el, _p, q) {
  const card = h('section', { class: 'card narrow', id: 'verify' }, h('h1', {}, 'Verifying your e-mail'));
  el.append(card);
  const t = q.get('token');
  const status = h('p', { role: 'status' }, 'One moment…');
  card.append(status);
  if (!t) { status.textContent = 'This link has no token.'; return; }
  try {
    await api('POST', '/api/auth/verify-email', { token: t });
    status.textContent = 'Your e-mail address is verified.';
    card.append(h('p', {}, auth.user() ? h('a', { href: '/projects' }, 'Go to your projects') : h('a', { href: '/login' }, 'Log in')));
    if (auth.user()) auth.setUser({ ...auth.user(), is_verified: true });
  } catch (e) {
    status.textContent = `This link did not work: ${errorText(e)}`;
    status.classList.add('error');
  }
}

export function resetView(el, _p, q) {
  const t = q.get('token');
  const password = input('new_password', 'password', { autocomplete: 'new-password', autofocus: true });
  const again = input('again', 'password', { autocomplete: 'new-password' });
  el.append(form('Choose a new password', [field('New password', password), field('The same again', again)], 'Set the password', async (err) => {
    if (password.value !== again.value) { err.textContent = 'The two passwords differ.'; return; }
    await api('POST', '/api/auth/password-reset', { token: t || '', new_password: password.value });
    el.replaceChildren(h('section', { class: 'card narrow' }, h('h1', {}, 'Password changed'), h('p', {}, 'You can log in with it now. ', h('a', { href: '/login' }, 'Log in'))));
  }));
}

export async function profileView(el) {
  const { user: u } = await api('GET', '/api/auth/profile');
  const first = h('input', { name: 'first_name', value: u.first_name, required: true });
  const last = h('input', { name: 'last_name', value: u.last_name, required: true });
  const company = h('input', { name: 'company', value: u.company || '' });
  el.append(h('h1', {}, 'Your profile'));
  const grid = h('div', { class: 'grid2' });
  el.append(grid);
  grid.append(form('Details', [
    h('p', {}, u.email, ' ', u.is_verified ? h('span', { class: 'badge ok' }, 'verified') : h('span', { class: 'badge warn' }, 'not verified')),
    field('First name', first), field('Last name', last), field('Company', company)], 'Save', async () => {
    const r = await api('PUT', '/api/auth/profile', { first_name: first.value.trim(), last_name: last.value.trim(), company: company.value.trim() });
    auth.setUser(r.user);
    toast('Profile saved', 'ok');
  }, u.is_verified ? [] : [h('button', { type: 'button', onclick: async () => {
    try { await api('POST', '/api/auth/verify-email/request'); toast('Verification e-mail sent', 'ok'); } catch (e) { toast(errorText(e), 'error'); }
  } }, 'Send the verification e-mail again')]));
  const cur = h('input', { type: 'password', name: 'current_password', required: true, autocomplete: 'current-password' });
  const nw = h('input', { type: 'password', name: 'new_password', required: true, autocomplete: 'new-password' });
  grid.append(form('Password', [field('Current password', cur), field('New password', nw)], 'Change the password', async () => {
    await api('POST', '/api/auth/password', { current_password: cur.value, new_password: nw.value });
    cur.value = ''; nw.value = '';
    toast('Password changed', 'ok');
  }));
  const sessions = h('section', { class: 'card' }, h('h2', {}, 'Sessions'));
  el.append(sessions);
  try {
    const { sessions: list } = await api('GET', '/api/auth/sessions');
    sessions.append(h('ul', { class: 'plain' }, list.map((s) => h('li', {}, `${s.user_agent || 'unknown browser'} · ${s.ip} · since ${fmtDate(s.created_at)}`, s.current ? h('span', { class: 'badge' }, 'this one') : h('button', { type: 'button', class: 'link', onclick: async (e) => {
      const li = e.target.closest('li');
      try { await api('DELETE', `/api/auth/sessions/${s.id}`); li.remove(); } catch (err) { toast(`Not ended: ${errorText(err)}`, 'error'); }
    } }, 'End')))));
  } catch (e) { sessions.append(h('p', { class: 'error' }, errorText(e))); }
}
