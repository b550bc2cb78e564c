// Project lists: mine, shared with me, the public gallery and the trash; new from a template
// (with a preview of each), import.
import { api } from '../api.js';
import { h, clear, dialog, field, errorText, fmtDate, toast, confirmDialog } from '../ui.js';
import { miniature } from '../graph.js';
import { navigate } from '../main.js';

const TABS = [
  ['mine', 'My projects'],
  ['shared', 'Shared with me'],
  ['public', 'Public gallery'],
  ['trash', 'Trash'],
];

export async function projectsView(el, _p, q) {
  let tab = TABS.some(([t]) => t === q.get('tab')) ? q.get('tab') : 'mine';
  el.append(h('div', { class: 'page-head' }, h('h1', {}, 'Projects'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => importDialog() }, 'Import'),
      h('button', { type: 'button', class: 'primary', onclick: () => newProjectDialog() }, 'New project'))));
  const search = h('input', { type: 'search', name: 'search', 'aria-label': 'Search projects', placeholder: 'Search' });
  const tablist = h('div', { role: 'tablist', class: 'tabs', 'aria-label': 'Which projects' });
  const listEl = h('div', { role: 'tabpanel', class: 'project-list', id: 'project-list' });
  el.append(h('div', { class: 'toolbar' }, tablist, search), listEl);
  const tabButtons = TABS.map(([id, label]) => {
    const b = h('button', { type: 'button', role: 'tab', id: `tab-${id}`, 'aria-controls': 'project-list', onclick: () => { tab = id; history.replaceState({}, '', `/projects?tab=${id}`); load(); } }, label);
    b.addEventListener('keydown', (e) => {
      const i = TABS.findIndex(([t]) => t === id);
      const j = e.key === 'ArrowRight' ? (i + 1) % TABS.length : e.key === 'ArrowLeft' ? (i + TABS.length - 1) % TABS.length : -1;
      if (j >= 0) { tabButtons[j].focus(); tabButtons[j].click(); }
    });
    tablist.append(b);
    return b;
  });
  let t = null;
  search.addEventListener('input', () => { clearTimeout(t); t = setTimeout(load, 250); });

  let loading = 0;
  async function load() {
    const seq = ++loading;
    tabButtons.forEach((b, i) => { const on = TABS[i][0] === tab; b.setAttribute('aria-selected', String(on)); b.tabIndex = on ? 0 : -1; });
    listEl.setAttribute('aria-labelledby', `tab-${tab}`);
    clear(listEl).append(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const r = await api('GET', `/api/projects?scope=${tab}&page_size=100&search=${encodeURIComponent(search.value.trim())}`);
      // Another tab or search was asked for meanwhile: its answer is the one shown.
      if (seq !== loading) return;
      clear(listEl);
      if (!r.projects.length) {
        listEl.append(h('p', { class: 'empty' }, { mine: 'No projects yet: start one from a template.', shared: 'Nothing has been shared with you yet.', public: 'No public projects yet.', trash: 'The trash is empty.' }[tab]));
        return;
      }
      listEl.append(h('ul', { class: 'cards' }, r.projects.map((p) => card(p))));
    } catch (e) { if (seq === loading) clear(listEl).append(h('p', { class: 'error' }, errorText(e))); }
  }

  function card(p) {
    const actions = [];
    if (tab === 'trash') {
      actions.push(h('button', { type: 'button', onclick: async () => { try { await api('POST', `/api/projects/${p.id}/restore`); toast(`Restored ${p.name}`, 'ok'); load(); } catch (e) { toast(errorText(e), 'error'); } } }, 'Restore'));
      actions.push(h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (!(await confirmDialog('Delete for good', `Delete "${p.name}" and its history for good? This cannot be undone.`, 'Delete for good'))) return;
        try { await api('POST', `/api/projects/${p.id}/purge`); load(); } catch (e) { toast(errorText(e), 'error'); }
      } }, 'Delete for good'));
    } else {
      actions.push(h('a', { href: `/projects/${p.id}`, class: 'button' }, p.access_level === 'viewer' ? 'View' : 'Open'));
      actions.push(h('button', { type: 'button', onclick: async () => {
        try { const r = await api('POST', `/api/projects/${p.id}/fork`, { name: `${p.name} (fork)` }); toast(`Forked into ${r.project.name}`, 'ok'); navigate(`/projects/${r.project.id}`); } catch (e) { toast(errorText(e), 'error'); }
      } }, 'Fork'));
      if (p.access_level === 'owner') actions.push(h('button', { type: 'button', class: 'danger', onclick: async () => {
        try { await api('DELETE', `/api/projects/${p.id}`); toast(`Moved ${p.name} to the trash`, 'ok'); load(); } catch (e) { toast(errorText(e), 'error'); }
      } }, 'Trash'));
    }
    return h('li', { class: 'card project', dataset: { id: p.id, name: p.name } },
      h('h2', {}, tab === 'trash' ? p.name : h('a', { href: `/projects/${p.id}` }, p.name)),
      p.description ? h('p', { class: 'small' }, p.description) : null,
      h('p', { class: 'meta small' }, `v${p.version} · ${p.access_level}${p.is_public ? ' · public' : ''} · ${fmtDate(p.deleted_at || p.updated_at)}`),
      h('div', { class: 'actions' }, actions));
  }
  // Something shared with this person while they look at the list: show it.
  const onNote = () => { if (tab === 'shared') load(); };
  window.addEventListener('sdsim:notification', onNote);
  load();
  return () => window.removeEventListener('sdsim:notification', onNote);
}

export async function newProjectDialog() {
  let templates = [];
  try { templates = (await api('GET', '/api/templates')).templates; } catch (e) { toast(errorText(e), 'error'); }
  const created = await dialog('New project', (close) => {
    const name = h('input', { name: 'project-name', required: true, autofocus: true });
    let chosen = null;
    const preview = h('div', { class: 'template-preview', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Choose a template, or start empty.'));
    const opts = [{ id: '', name: 'Empty design', description: 'A blank canvas.', design: null }, ...templates];
    const list = h('div', { class: 'template-list', role: 'radiogroup', 'aria-label': 'Template' });
    for (const t of opts) {
      const radio = h('input', { type: 'radio', name: 'template', value: t.id, id: `tpl-${t.id || 'empty'}`, checked: !t.id });
      radio.addEventListener('change', () => {
        chosen = t.id ? t : null;
        if (!name.value || name.dataset.auto === '1') { name.value = t.id ? t.name : ''; name.dataset.auto = '1'; }
        clear(preview);
        if (t.design) preview.append(miniature(t.design, 460, 240));
        preview.append(h('h3', {}, t.name), h('p', { class: 'small' }, t.description || ''),
          t.design ? h('p', { class: 'small muted' }, `${(t.design.components || []).length} components, ${(t.design.connections || []).length} connections, ${t.design.duration_s ?? '?'} s`) : '');
      });
      list.append(h('label', { for: radio.id, class: 'template' }, radio, h('span', {}, t.name, t.category ? h('small', {}, ` ${t.category}`) : null)));
    }
    name.addEventListener('input', () => { name.dataset.auto = '0'; });
    const err = h('p', { class: 'error', role: 'alert' });
    const f = h('form', {}, field('Name', name), h('div', { class: 'grid2' }, list, preview), err,
      h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => close(undefined) }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'Create')));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const submit = f.querySelector('button[type=submit]');
      if (submit.disabled) return;
      submit.disabled = true;
      try {
        const body = { name: name.value.trim() || (chosen ? chosen.name : 'Untitled design') };
        if (chosen) body.template_id = chosen.id;
        else body.design = { name: body.name, duration_s: 60, components: [], connections: [] };
        const r = await api('POST', '/api/projects', body);
        close(r.project);
      } catch (x) { err.textContent = errorText(x); } finally { submit.disabled = false; }
    });
    return f;
  }, { class: 'wide' });
  if (created) navigate(`/projects/${created.id}`);
}

export function importDialog() {
  return dialog('Import a project', (close) => {
    const file = h('input', { type: 'file', name: 'file', accept: '.json,application/json', required: true });
    const name = h('input', { name: 'name' });
    const err = h('p', { class: 'error', role: 'alert' });
    const f = h('form', {}, field('A project export or an engine design (JSON)', file), field('Name (optional)', name), err,
      h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => close(undefined) }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'Import')));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const submit = f.querySelector('button[type=submit]');
      if (submit.disabled) return;
      submit.disabled = true;
      try {
        const text = await file.files[0].text();
        let doc; try { doc = JSON.parse(text); } catch (x) { err.textContent = `This file is not JSON: ${x.message}`; return; }
        const r = await api('POST', '/api/projects/import', { document: doc, name: name.value.trim() });
        close(r.project); navigate(`/projects/${r.project.id}`);
      } catch (x) { err.textContent = errorText(x); } finally { submit.disabled = false; }
    });
    return f;
  });
}
