// The project's dialogs: version history (diff and rollback) and sharing (people and links).
import { api } from '../api.js';
import { h, clear, dialog, field, errorText, fmtDate, toast } from '../ui.js';
import { renderDiff } from '../diff.js';
import { miniatureDiff } from '../graph.js';

/**
 * Resolves with {project} after a rollback, undefined otherwise. Live (`rollback` given, no
 * current version: the live document is ahead of every version) the editor rolls back itself,
 * as an edit: resolves with {rolledBack: version}.
 */
export function historyDialog(project, currentVersion, { readOnly = false, rollback = null } = {}) {
  return dialog('Version history', (close) => {
    const list = h('ol', { class: 'versions', 'aria-label': 'Versions' });
    const detail = h('section', { class: 'version-detail', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Choose a version to see what changed.'));
    const fromSel = h('select', { name: 'from', 'aria-label': 'Compare from version' });
    const toSel = h('select', { name: 'to', 'aria-label': 'Compare to version' });
    const compareBtn = h('button', { type: 'button', onclick: () => compare(+fromSel.value, +toSel.value) }, 'Compare');
    let versions = [];

    // Only the newest comparison asked for fills the panel (answers can come out of order).
    let comparing = 0;
    async function compare(from, to) {
      const seq = ++comparing;
      clear(detail);
      detail.append(h('h3', {}, `Version ${from} → version ${to}`));
      try {
        const [d, a, b] = await Promise.all([
          api('GET', `/api/projects/${project.id}/diff?from=${from}&to=${to}`),
          api('GET', `/api/projects/${project.id}/versions/${from}`),
          api('GET', `/api/projects/${project.id}/versions/${to}`),
        ]);
        if (seq !== comparing) return false;
        detail.append(renderDiff(d.diff), miniatureDiff(a, b, d.diff));
      } catch (e) { if (seq !== comparing) return false; detail.append(h('p', { class: 'error' }, errorText(e))); }
      return true;
    }

    function show(v) {
      for (const li of list.children) li.classList.toggle('current', li.dataset.version === String(v.version));
      const prev = versions.find((x) => x.version < v.version);
      fromSel.value = String(prev ? prev.version : v.version); toSel.value = String(v.version);
      compare(prev ? prev.version : v.version, v.version).then((shown) => {
        if (shown && !readOnly && v.version !== currentVersion) {
          detail.append(h('div', { class: 'actions' },
            currentVersion === null ? null : h('button', { type: 'button', onclick: () => compare(v.version, currentVersion) }, `Compare with the current version (${currentVersion})`),
            h('button', { type: 'button', class: 'primary', onclick: async () => {
              try {
                if (rollback) { await rollback(v.version); close({ rolledBack: v.version }); return; }
                const r = await api('POST', `/api/projects/${project.id}/rollback`, { version: v.version }, { headers: { 'If-Match': `"${currentVersion}"` } });
                close({ project: r.project });
              } catch (e) { toast(errorText(e), 'error'); }
            } }, `Roll back to version ${v.version}`)));
        }
      });
    }

    api('GET', `/api/projects/${project.id}/versions?page_size=100`).then((r) => {
      versions = r.versions;
      for (const v of versions) {
        const opt = () => h('option', { value: v.version }, `v${v.version}${v.named ? ` · ${v.message.length > 30 ? `${v.message.slice(0, 29)}…` : v.message}` : ''}`);
        fromSel.append(opt()); toSel.append(opt());
        list.append(h('li', { dataset: { version: v.version } }, h('button', { type: 'button', class: 'link', onclick: () => show(v) },
          h('strong', {}, `Version ${v.version}`), v.named ? h('span', { class: 'badge' }, 'named') : h('span', { class: 'badge muted' }, 'autosave'), ' ',
          v.message || '', h('small', {}, fmtDate(v.updated_at || v.created_at)))));
      }
      if (versions[0]) show(versions[0]);
    }).catch((e) => list.append(h('li', { class: 'error' }, errorText(e))));

    return h('div', { class: 'history' }, h('div', { class: 'history-list' }, list),
      h('div', {}, h('div', { class: 'toolbar' }, fromSel, '→', toSel, compareBtn), detail));
  }, { class: 'wide' });
}

export function shareDialog(project, onVersion) {
  return dialog(`Share "${project.name}"`, () => {
    const people = h('ul', { class: 'plain people', 'aria-label': 'People with access' });
    const links = h('ul', { class: 'plain links', 'aria-label': 'Links' });
    const email = h('input', { type: 'email', name: 'share-email', required: true, autocomplete: 'off' });
    const role = h('select', { name: 'share-role' }, h('option', { value: 'viewer' }, 'can view'), h('option', { value: 'editor' }, 'can edit'));
    const msg = h('p', { role: 'status', class: 'small share-message' });
    const form = h('form', { class: 'share-form' }, field('E-mail', email), field('Access', role), h('button', { type: 'submit', class: 'primary' }, 'Share'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try { const r = await api('POST', `/api/projects/${project.id}/shares`, { email: email.value.trim(), role: role.value }); msg.textContent = r.message; email.value = ''; loadPeople(); } catch (x) { msg.textContent = errorText(x); }
    });
    async function loadPeople() {
      clear(people);
      try {
        const r = await api('GET', `/api/projects/${project.id}/permissions`);
        for (const p of r.permissions) {
          const who = p.email || (p.role === 'owner' ? 'you (owner)' : `account ${p.user_id}`);
          people.append(h('li', {}, `${who} · ${p.role}${p.pending ? ' (invited)' : ''} `, p.role === 'owner' || !p.email ? null : h('button', { type: 'button', class: 'link', onclick: async () => {
            try { await api('DELETE', `/api/projects/${project.id}/shares?` + (p.email ? `email=${encodeURIComponent(p.email)}` : `user_id=${encodeURIComponent(p.user_id)}`)); loadPeople(); } catch (x) { msg.textContent = errorText(x); }
          } }, 'Remove')));
        }
      } catch (x) { people.append(h('li', { class: 'error' }, errorText(x))); }
    }
    const access = h('select', { name: 'link-access' }, h('option', { value: 'view' }, 'open and fork'), h('option', { value: 'fork' }, 'fork only'));
    const newLink = h('p', { class: 'new-link' });
    async function loadLinks() {
      clear(links);
      try {
        const r = await api('GET', `/api/projects/${project.id}/links`);
        for (const l of r.links.filter((x) => !x.revoked)) {
          links.append(h('li', {}, `${l.access} link, made ${fmtDate(l.created_at)}${l.expires_at ? `, expires ${fmtDate(l.expires_at)}` : ''} `, h('button', { type: 'button', class: 'link', onclick: async () => {
            try { await api('DELETE', `/api/projects/${project.id}/links/${l.id}`); loadLinks(); } catch (x) { toast(`Not revoked: ${errorText(x)}`, 'error'); }
          } }, 'Revoke')));
        }
      } catch (x) { links.append(h('li', { class: 'error' }, errorText(x))); }
    }
    const makeLink = h('button', { type: 'button', onclick: async () => {
      try {
        const l = await api('POST', `/api/projects/${project.id}/links`, { access: access.value });
        const url = `${location.origin}/links/${l.token}`;
        const out = h('input', { readOnly: true, value: url, 'aria-label': 'The new link', class: 'link-url' });
        newLink.replaceChildren('Copy this link now (it is shown once): ', out,
          h('button', { type: 'button', onclick: () => { out.select(); navigator.clipboard?.writeText(url).catch(() => {}); } }, 'Copy'));
        loadLinks();
      } catch (x) { msg.textContent = errorText(x); }
    } }, 'Create a link');
    loadPeople(); loadLinks();
    const pub = h('input', { type: 'checkbox', id: 'share-public', checked: !!project.is_public });
    pub.addEventListener('change', async () => {
      try {
        const r = await api('PATCH', `/api/projects/${project.id}`, { is_public: pub.checked });
        project.is_public = r.project.is_public;
        if (onVersion) onVersion(r.project.version);
        msg.textContent = project.is_public ? 'Public: it is in the gallery.' : 'No longer public.';
      } catch (x) { pub.checked = !pub.checked; msg.textContent = errorText(x); }
    });
    return h('div', { class: 'share' },
      h('div', { class: 'field inline' }, pub, h('label', { for: 'share-public' }, 'Public: anyone signed in finds it in the gallery, can view and fork it')),
      h('h3', {}, 'People'), form, msg, people,
      h('h3', {}, 'Links'), h('div', { class: 'field inline' }, h('label', { for: 'link-access' }, 'Anyone signed in with the link can'), Object.assign(access, { id: 'link-access' }), makeLink), newLink, links);
  });
}
