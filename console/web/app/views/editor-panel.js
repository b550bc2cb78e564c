// The editor's side panel: the selected component's or connection's fields, or the design's,
// with their validation problems, the analytic preview and, while a run is open, the selected
// component's figures. Every field edits through the editor's change(), so each is one
// undoable edit (and, in a live session, one shared with the others).
import { h, clear, field } from '../ui.js';
import { KINDS, KIND_IDS, fieldsFor, DISTS, iconSvgPath } from '../catalogue.js';
import { fmt } from '../charts.js';

/** A component kind's icon. */
export function icon(kind, size = 20) {
  return h('svg', { svg: true, viewBox: '0 0 24 24', width: size, height: size, class: 'icon', 'aria-hidden': 'true' }, h('path', { svg: true, d: iconSvgPath(kind) }));
}

/** The colour band of a utilisation, for a node and for a figure. */
export function utilClass(u) {
  if (u === undefined || u === null || !Number.isFinite(u)) return '';
  if (u >= 1) return 'util-over';
  if (u >= 0.8) return 'util-high';
  if (u >= 0.5) return 'util-mid';
  return 'util-low';
}

/**
 * Draws the panel into `panel` from the editor `ed`: its state `st`, `readOnly()`, `change`,
 * the model helpers `comp`, `comps`, `conns`, the actions `renameComponent`, `connect`,
 * `duplicate`, `deleteSelection`, and `runFigures` (false on a share link, which shows no run).
 */
export function sidePanel(panel, ed) {
  const { st, change, comp, comps, conns, renameComponent, connect, deleteSelection } = ed;
  let readOnly = ed.readOnly();
  const put = (...xs) => panel.append(...xs.flat().filter((x) => x !== null && x !== undefined && x !== false));
  function numOrRaw(v) {
    const t = v.trim();
    if (t === '') return undefined;
    const n = Number(t);
    return Number.isFinite(n) && /^-?[\d.eE+-]+$/.test(t) ? n : t;
  }

  function setKey(obj, key, value) { if (value === undefined) delete obj[key]; else obj[key] = value; }

  function compInput(name, label, get, set, attrs = {}, hint) {
    const inp = h('input', { value: get() ?? '', disabled: readOnly, 'data-field': attrs.dataField, placeholder: attrs.placeholder, inputmode: attrs.inputmode, name: attrs.dataField });
    inp.addEventListener('input', () => change((d) => set(d, inp.value), { key: `${name}:${label}`, panel: false }));
    return field(label, inp, hint);
  }

  function problemsList(list) {
    if (!list || !list.length) return null;
    return h('ul', { class: 'problems', role: 'alert' }, list.map((p) => h('li', {}, h('code', {}, p.path), ' ', p.message)));
  }

  function drawPanel() {
    readOnly = ed.readOnly();
    const a = document.activeElement;
    const focused = a && panel.contains(a) ? a.dataset.field : null;
    // Someone else's edit can redraw the panel while this person types: keep the caret.
    const caret = focused && typeof a.selectionStart === 'number' ? [a.selectionStart, a.selectionEnd] : null;
    clear(panel);
    if (st.sel?.type === 'component') componentPanel(comp(st.sel.name));
    else if (st.sel?.type === 'connection') connectionPanel(st.sel.index);
    else designPanel();
    liveFigures();
    const again = focused ? panel.querySelector(`[data-field="${focused}"]`) : null;
    if (again) { again.focus(); if (caret) try { again.setSelectionRange(...caret); } catch { /* not a text field */ } }
  }

  function componentPanel(c) {
    if (!c) { designPanel(); return; }
    const id = st.doc.layout.ids[c.name];
    const byId = () => st.doc.design.components.find((x) => st.doc.layout.ids[x.name] === id);
    const k = KINDS[c.kind] || KINDS.service;
    put(h('h2', {}, icon(c.kind, 18), ' ', k.label));
    const nameErr = h('small', { class: 'error', role: 'alert' });
    const nameInp = h('input', { value: c.name, disabled: readOnly, 'data-field': 'name', name: 'name' });
    nameInp.addEventListener('input', () => { nameErr.textContent = renameComponent(byId().name, nameInp.value) || (nameInp.value.trim() ? '' : 'a component needs a name'); });
    put(h('div', { class: 'field' }, h('label', { for: 'comp-name' }, 'Name'), Object.assign(nameInp, { id: 'comp-name' }), nameErr));
    const kindSel = h('select', { disabled: readOnly, 'data-field': 'kind', name: 'kind' }, KIND_IDS.map((x) => h('option', { value: x, selected: x === c.kind }, KINDS[x].label)));
    kindSel.addEventListener('change', () => change((d) => {
      const x = d.design.components.find((y) => d.layout.ids[y.name] === id);
      x.kind = kindSel.value;
      if (x.kind === 'client' && !x.traffic) x.traffic = { type: 'open', rate: 100 };
      if (x.kind !== 'client') delete x.traffic;
    }));
    put(field('Kind', kindSel));
    put(problemsList(st.compProblems.get(c.name)));
    const pv = (st.preview?.components || []).find((x) => x.name === c.name);
    if (pv) {
      put(h('dl', { class: 'figures' },
        h('dt', {}, 'Predicted utilisation'), h('dd', { class: utilClass(pv.utilisation) }, `${(pv.utilisation * 100).toFixed(1)}%`),
        h('dt', {}, 'Arrival rate'), h('dd', {}, `${pv.arrival_rate.toFixed(1)} /s`),
        h('dt', {}, 'Capacity'), h('dd', {}, `${pv.capacity_per_s.toFixed(0)} /s`),
        pv.response_ms !== undefined && pv.response_ms !== null ? [h('dt', {}, 'Mean response'), h('dd', {}, `${Number(pv.response_ms).toFixed(2)} ms`)] : null));
    }
    if (ed.runFigures) put(h('div', { id: 'live-figures', class: 'live-figures', 'aria-live': 'off' }));
    if (c.kind === 'client') { trafficFields(c, id); } else {
      put(h('p', { class: 'muted small' }, `Profile: ${k.capacity?.toLocaleString()} req/s at ${k.latency_ms} ms per replica. Empty fields use the profile's defaults.`));
      for (const f of fieldsFor(c.kind)) {
        const get = () => byId()?.[f.key];
        if (f.type === 'enum') {
          const sel = h('select', { disabled: readOnly, 'data-field': f.key, name: f.key }, h('option', { value: '' }, `default (${f.def})`), f.options.map((o) => h('option', { value: o, selected: get() === o }, o)));
          sel.addEventListener('change', () => change((d) => setKey(d.design.components.find((y) => d.layout.ids[y.name] === id), f.key, sel.value || undefined)));
          put(field(f.label, sel));
        } else {
          put(compInput(id, f.label, get, (d, v) => setKey(d.design.components.find((y) => d.layout.ids[y.name] === id), f.key, numOrRaw(v)), { dataField: f.key, placeholder: `default: ${f.def}`, inputmode: 'decimal' }));
        }
      }
      serviceTimeFields(c, id);
    }
    if (!readOnly) {
      const others = comps().filter((x) => x.name !== c.name);
      const target = h('select', { 'data-field': 'connect-to', name: 'connect-to' }, others.map((x) => h('option', { value: x.name }, x.name)));
      put(h('div', { class: 'field inline' }, h('label', { for: 'connect-to' }, 'Connect to'), Object.assign(target, { id: 'connect-to' }),
        h('button', { type: 'button', onclick: () => target.value && connect(byId().name, target.value), disabled: !others.length }, 'Connect')));
      put(h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: ed.duplicate }, 'Duplicate'),
        h('button', { type: 'button', class: 'danger', onclick: deleteSelection }, 'Delete component')));
    }
  }

  function serviceTimeFields(c, id) {
    const k = KINDS[c.kind] || KINDS.service;
    const cur = () => st.doc.design.components.find((y) => st.doc.layout.ids[y.name] === id);
    const st0 = c.service_time;
    const box = h('fieldset', { class: 'group' }, h('legend', {}, 'Service time'));
    const sel = h('select', { disabled: readOnly, 'data-field': 'dist', name: 'dist' }, h('option', { value: '' }, `default (exponential, ${k.latency_ms} ms)`), DISTS.map((d) => h('option', { value: d, selected: st0?.dist === d }, d)));
    sel.addEventListener('change', () => change((d) => {
      const x = d.design.components.find((y) => d.layout.ids[y.name] === id);
      if (!sel.value) delete x.service_time;
      else if (sel.value === 'uniform') x.service_time = { dist: 'uniform', min_ms: k.latency_ms / 2, max_ms: k.latency_ms * 1.5 };
      else x.service_time = { dist: sel.value, mean_ms: x.service_time?.mean_ms ?? k.latency_ms, ...(sel.value === 'lognormal' ? { cv: 1 } : {}), ...(sel.value === 'erlang' ? { k: 2 } : {}) };
    }));
    box.append(field('Distribution', sel));
    const params = { exponential: ['mean_ms'], deterministic: ['mean_ms'], lognormal: ['mean_ms', 'cv'], erlang: ['mean_ms', 'k'], uniform: ['min_ms', 'max_ms'] }[st0?.dist] || [];
    for (const p of params) box.append(compInput(id, p, () => cur()?.service_time?.[p], (d, v) => setKey(d.design.components.find((y) => d.layout.ids[y.name] === id).service_time, p, numOrRaw(v)), { dataField: `st-${p}` }));
    put(box);
  }

  function trafficFields(c, id) {
    const cur = () => st.doc.design.components.find((y) => st.doc.layout.ids[y.name] === id);
    const t = c.traffic || {};
    const box = h('fieldset', { class: 'group' }, h('legend', {}, 'Traffic'));
    const type = h('select', { disabled: readOnly, 'data-field': 'traffic-type', name: 'traffic-type' }, ['open', 'closed'].map((x) => h('option', { value: x, selected: t.type === x }, x === 'open' ? 'open (arrival rate)' : 'closed (users)')));
    type.addEventListener('change', () => change((d) => { d.design.components.find((y) => d.layout.ids[y.name] === id).traffic = type.value === 'open' ? { type: 'open', rate: 100 } : { type: 'closed', users: 10, think_time_ms: 100 }; }));
    box.append(field('Workload', type));
    const tf = (key, label) => compInput(id, label, () => cur()?.traffic?.[key], (d, v) => setKey(d.design.components.find((y) => d.layout.ids[y.name] === id).traffic, key, numOrRaw(v)), { dataField: `traffic-${key}`, inputmode: 'decimal' });
    if (t.type === 'closed') { box.append(tf('users', 'Users'), tf('think_time_ms', 'Think time (ms)')); } else {
      box.append(tf('rate', 'Rate (requests/s)'));
      const shapes = { constant: [], ramp: ['to_rate', 'start_s', 'end_s'], spike: ['peak_rate', 'at_s', 'duration_s'], wave: ['amplitude', 'period_s'], diurnal: ['amplitude', 'period_s', 'peak_at_s'] };
      const shape = t.pattern?.shape || 'constant';
      const ss = h('select', { disabled: readOnly, 'data-field': 'pattern', name: 'pattern' }, Object.keys(shapes).map((x) => h('option', { value: x, selected: x === shape }, x)));
      ss.addEventListener('change', () => change((d) => {
        const tr = d.design.components.find((y) => d.layout.ids[y.name] === id).traffic;
        if (ss.value === 'constant') delete tr.pattern; else tr.pattern = { shape: ss.value };
      }));
      box.append(field('Pattern', ss));
      for (const p of shapes[shape]) box.append(compInput(id, p, () => cur()?.traffic?.pattern?.[p], (d, v) => setKey(d.design.components.find((y) => d.layout.ids[y.name] === id).traffic.pattern, p, numOrRaw(v)), { dataField: `pattern-${p}` }));
    }
    put(box);
  }

  function connectionPanel(i) {
    const e = conns()[i];
    if (!e) { designPanel(); return; }
    put(h('h2', {}, 'Connection'), h('p', {}, `${e.from} → ${e.to}`));
    put(problemsList(st.connProblems.get(i)));
    const inp = (key, label, hint) => {
      const x = h('input', { value: e[key] ?? '', disabled: readOnly, 'data-field': key, name: key, inputmode: 'decimal' });
      x.addEventListener('input', () => change((d) => setKey(d.design.connections[i], key, numOrRaw(x.value)), { key: `conn${i}:${key}`, panel: false }));
      return field(label, x, hint);
    };
    put(inp('probability', 'Probability', 'With probabilistic routing: all or none of a component\'s connections have one; they sum to 1.'), inp('latency_ms', 'Network latency (ms)'));
    if (!readOnly) put(h('div', { class: 'actions' }, h('button', { type: 'button', class: 'danger', onclick: deleteSelection }, 'Delete connection')));
  }

  function designPanel() {
    const d0 = st.doc.design;
    put(h('h2', {}, 'Design'));
    const top = (key, label, hint) => {
      const x = h('input', { value: d0[key] ?? '', disabled: readOnly, 'data-field': `design-${key}`, name: key });
      x.addEventListener('input', () => change((d) => setKey(d.design, key, ['name', 'description'].includes(key) ? (x.value === '' ? undefined : x.value) : numOrRaw(x.value)), { key: `design:${key}`, panel: false }));
      return field(label, x, hint);
    };
    put(top('name', 'Design name'), top('description', 'Description'), top('duration_s', 'Duration (simulated s)'), top('seed', 'Seed'), top('window_s', 'Window (s)'), top('max_events', 'Event budget'));
    const extra = h('textarea', { rows: 6, disabled: readOnly, 'data-field': 'design-extra', spellcheck: 'false' }, JSON.stringify({ chaos: d0.chaos || [], alerts: d0.alerts || [] }, null, 1));
    const extraErr = h('small', { class: 'error', role: 'alert' });
    extra.addEventListener('input', () => {
      let v; try { v = JSON.parse(extra.value); extraErr.textContent = ''; } catch (e) { extraErr.textContent = `not JSON yet: ${e.message}`; return; }
      change((d) => { setKey(d.design, 'chaos', v.chaos?.length ? v.chaos : undefined); setKey(d.design, 'alerts', v.alerts?.length ? v.alerts : undefined); }, { key: 'design:extra', panel: false });
    });
    put(h('div', { class: 'field' }, h('label', { for: 'design-extra' }, 'Chaos and alerts (JSON)'), Object.assign(extra, { id: 'design-extra' }), extraErr));
    put(problemsList(st.globalProblems));
    if (st.preview) {
      const p = st.preview;
      put(h('h3', {}, 'Analytic preview'), h('dl', { class: 'figures' },
        h('dt', {}, 'Entry rate'), h('dd', {}, `${(p.entry_rate ?? 0).toFixed(1)} /s`),
        h('dt', {}, 'End-to-end response'), h('dd', {}, p.end_to_end_response_ms === null || p.end_to_end_response_ms === undefined ? 'unbounded (saturated)' : `${p.end_to_end_response_ms.toFixed(2)} ms`)),
      p.bottleneck ? h('p', { class: 'small' }, p.bottleneck) : null);
    }
    put(h('details', { class: 'shortcuts' }, h('summary', {}, 'Keyboard shortcuts'), h('ul', { class: 'plain small' },
      h('li', {}, 'Tab: move between components; Enter: edit the focused one'),
      h('li', {}, 'Arrow keys: move the component (Shift: farther)'),
      h('li', {}, 'Delete: remove the selection; Ctrl+C / Ctrl+V / Ctrl+D: copy, paste, duplicate'),
      h('li', {}, 'Ctrl+Z / Ctrl+Shift+Z: undo, redo; Ctrl+S: save a named version'),
      h('li', {}, 'Escape: select nothing; F: fit the design in view; + and −: zoom'))));
  }

  function refreshPanelProblems() {
    const old = panel.querySelector('.problems');
    let list = null;
    if (st.sel?.type === 'component') list = st.compProblems.get(st.sel.name);
    else if (st.sel?.type === 'connection') list = st.connProblems.get(st.sel.index);
    else list = st.globalProblems;
    const neu = problemsList(list);
    if (old && neu) old.replaceWith(neu); else if (old) old.remove(); else if (neu) panel.querySelector('h2')?.after(neu);
  }

  /** The selected component's figures in the window on the canvas (a run is open). */
  function liveFigures() {
    const box = panel.querySelector('#live-figures');
    if (!box) return;
    const m = st.live && st.sel?.type === 'component' ? st.live.byName.get(st.sel.name) : null;
    if (!m) { clear(box); return; }
    const dt = st.live.dt;
    const rows = [['Utilisation', `${fmt((m.utilisation || 0) * 100)}%`], ['Throughput', `${fmt(m.throughput)} /s`],
      ['p50 / p95 / p99', `${fmt(m.p50_ms)} / ${fmt(m.p95_ms)} / ${fmt(m.p99_ms)} ms`], ['Errors, drops', `${fmt((m.errors || 0) / dt)} /s, ${fmt((m.drops || 0) / dt)} /s`],
      ['Queue', fmt(m.queue_length)], ['Replicas up', fmt(m.replicas_up)]];
    clear(box).append(h('h3', {}, `Run, at ${fmt(st.live.at)} s`), h('dl', { class: 'figures' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  }

  return { draw: drawPanel, refreshProblems: refreshPanelProblems, liveFigures };
}
