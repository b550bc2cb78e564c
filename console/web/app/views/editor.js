// The editor: a canvas of components and connections, the palette, the side panel
// (editor-panel.js), live validation and the analytic preview, undo/redo, live collaboration
// (collab.js: every change is an edit of the live document, others' edits and presence show
// as they come) and, without a live session, autosave with the 412 conflict screen.
import { api, ApiError } from '../api.js';
import { h, s, clear, toast, dialog, confirmDialog, field, errorText, download } from '../ui.js';
import { KINDS, KIND_IDS, newComponent, iconSvgPath } from '../catalogue.js';
import { autoLayout, NODE_W, NODE_H } from '../graph.js';
import { diffDesigns, renderDiff, mergeDesigns, isEmptyDiff } from '../diff.js';
import { navigate, guard } from '../main.js';
import { historyDialog, shareDialog } from './project-dialogs.js';
import { fmt } from '../charts.js';
import { CollabSession, diffDocs, applyEdit, MAX_OPS } from '../collab.js';
import { sidePanel, icon, utilClass } from './editor-panel.js';

const VALIDATE_MS = 300;
const SAVE_MS = 800;
const clone = (x) => JSON.parse(JSON.stringify(x));
const newId = () => (crypto.randomUUID ? crypto.randomUUID() : `id-${Date.now()}-${Math.random().toString(36).slice(2)}`);

export async function linkView(el, { token }) {
  let r;
  try { r = await api('GET', `/api/links/${encodeURIComponent(token)}`, undefined, { full: true }); } catch (e) {
    el.append(h('h1', {}, 'This link does not open'), h('p', { class: 'error' }, errorText(e))); return null;
  }
  // Left while the project loaded: nothing to open it in (main.js renders the next page).
  if (!el.isConnected) return null;
  return openEditor(el, r.body.project, { linkToken: token, readOnly: true });
}

export async function editorView(el, { id }, query) {
  let r;
  try { r = await api('GET', `/api/projects/${encodeURIComponent(id)}`); } catch (e) {
    el.append(h('h1', {}, 'Project not found'), h('p', { class: 'error' }, errorText(e)), h('a', { href: '/projects' }, 'Back to your projects'));
    return null;
  }
  if (!el.isConnected) return null;
  return openEditor(el, r.project, { run: query?.get('run') || null });
}

/** The `n`th largest of `values` (n small): one pass keeping the top n, not a full sort. */
function nthLargest(values, n) {
  const top = [];
  for (const v of values) {
    if (top.length === n && v <= top[n - 1]) continue;
    let i = top.length < n ? top.length : n - 1;
    while (i > 0 && top[i - 1] < v) { if (i < n) top[i] = top[i - 1]; i--; }
    top[i] = v;
    if (top.length > n) top.length = n;
  }
  return top.length < n ? 0 : top[n - 1];
}

/** The layout a project keeps beside its design: stable ids by name and positions by id. */
function normaliseLayout(design, layout) {
  const l = layout && typeof layout === 'object' && !Array.isArray(layout) ? clone(layout) : {};
  l.ids = l.ids && typeof l.ids === 'object' ? l.ids : {};
  l.positions = l.positions && typeof l.positions === 'object' ? l.positions : {};
  const names = (design.components || []).map((c) => c.name);
  let changed = false;
  for (const n of names) if (!l.ids[n]) { l.ids[n] = newId(); changed = true; }
  const present = new Set(names);
  for (const n of Object.keys(l.ids)) if (!present.has(n)) { delete l.ids[n]; changed = true; }
  const known = {};
  for (const n of names) if (l.positions[l.ids[n]]) known[n] = l.positions[l.ids[n]];
  if (Object.keys(known).length < names.length) {
    const pos = autoLayout(design, known);
    for (const n of names) if (!l.positions[l.ids[n]]) { l.positions[l.ids[n]] = pos[n]; changed = true; }
  }
  return { layout: l, changed };
}

function normaliseDesign(d) {
  const design = d && typeof d === 'object' && !Array.isArray(d) ? clone(d) : {};
  if (!Array.isArray(design.components)) design.components = [];
  if (!Array.isArray(design.connections)) design.connections = [];
  return design;
}

/** What the editor draws of a document: lists where the engine has them, a layout for all. */
function display(doc) {
  const design = normaliseDesign(doc.design);
  return { design, layout: normaliseLayout(design, doc.layout).layout };
}

function openEditor(el, project, opts) {
  document.body.classList.add('editing');
  // Not a constant: a live session that ends for good (project gone, access revoked) leaves
  // the page read only.
  let readOnly = opts.readOnly || !['owner', 'editor'].includes(project.access_level);
  // Everyone who opens a project (not a link) joins its live session; viewers watch it.
  const liveMode = !opts.linkToken && typeof WebSocket === 'function';
  const design0 = normaliseDesign(project.design);
  const { layout: layout0, changed: layoutNeedsSave } = normaliseLayout(design0, project.layout);
  const st = {
    project,
    version: project.version,
    doc: { design: design0, layout: layout0 },
    base: { design: clone(project.design ?? {}), layout: clone(project.layout ?? {}), version: project.version },
    sel: null,
    // Undo entries are the ops that revert a change, computed when it was made: with others
    // editing, undo reverts one's own changes only.
    undo: [], redo: [],
    lastKey: null, lastAt: 0,
    problems: [], compProblems: new Map(), connProblems: new Map(), globalProblems: [],
    preview: null,
    dirty: false, saving: false, conflict: false,
    view: { x: 0, y: 0, k: 1 },
    clipboard: null,
    liveStatus: 'connecting', pending: 0, peers: [], gone: null, pointer: null,
  };
  // Where changes go: the live session, or (without one) this page's own copy, saved by REST.
  const local = {
    shown: clone({ design: project.design ?? {}, layout: project.layout ?? {} }),
    doc() { return clone(this.shown); },
    edit(ops) { applyEdit(this.shown, ops); return clone(this.shown); },
  };
  let collab = null;
  const sink = () => collab || local;

  // ---------- the frame ----------
  const status = h('span', { class: 'save-status', role: 'status', 'aria-live': 'polite', id: 'save-status' }, liveMode ? 'Connecting…' : readOnly ? 'Read only' : 'Saved');
  // Who else is here: a chip per person (their colour), pointers and selections on the canvas.
  const presenceBar = liveMode ? h('div', { class: 'presence', id: 'presence', role: 'list', 'aria-label': 'People here' }) : null;
  const nameInput = h('input', { class: 'title-input', 'aria-label': 'Project name', value: project.name, readOnly });
  const btn = (label, onclick, attrs = {}) => h('button', { type: 'button', onclick, ...attrs }, label);
  const undoBtn = btn('Undo', () => doUndo(), { 'aria-keyshortcuts': 'Control+Z', title: 'Undo (Ctrl+Z)', disabled: true });
  const redoBtn = btn('Redo', () => doRedo(), { 'aria-keyshortcuts': 'Control+Shift+Z', title: 'Redo (Ctrl+Shift+Z)', disabled: true });
  const toolbar = h('div', { class: 'editor-toolbar', role: 'toolbar', 'aria-label': 'Project' },
    h('a', { href: '/projects', class: 'back', 'aria-label': 'Back to projects' }, '←'),
    h('h1', { class: 'visually-hidden' }, project.name),
    nameInput, status, presenceBar,
    h('span', { class: 'spacer' }),
    readOnly ? null : undoBtn, readOnly ? null : redoBtn,
    // Live, a named save names the live document as it is (the server saves it as a version).
    readOnly ? null : btn('Save version', () => namedSave(), { title: 'Save a named version (Ctrl+S)', 'aria-keyshortcuts': 'Control+S', id: 'save-version' }),
    opts.linkToken ? null : btn('History', () => openHistory()),
    project.access_level === 'owner' ? btn('Share', () => shareDialog(project, (v) => {
      // Visibility is not the design: follow the new version so the next save is not a conflict.
      if (st.base.version === st.version) st.base.version = v;
      st.version = v;
    })) : null,
    opts.linkToken ? null : btn('Run', () => ensureDock().then((d) => d && d.show('live')), { id: 'open-run', class: 'primary', title: 'Run the saved design and watch it live' }),
    btn('Fork', () => fork()),
    opts.linkToken ? null : btn('Export', () => exportProject()),
    project.access_level === 'owner' ? btn('Move to trash', () => trash(), { class: 'danger' }) : null);
  const banner = readOnly ? h('div', { class: 'banner', id: 'readonly-banner', role: 'note' },
    `Read only: ${opts.linkToken ? 'opened through a link' : `shared with you as ${project.access_level || 'viewer'}`}${liveMode ? '; others\' changes show as they make them' : ''}. Fork it to make your own copy.`) : null;
  // Says when the live session ended for good or the access changed under the page.
  const liveBanner = h('div', { class: 'banner live-banner', id: 'live-banner', role: 'alert', hidden: true });

  const palette = h('aside', { class: 'palette', 'aria-label': 'Components' }, h('h2', {}, 'Components'),
    h('p', { class: 'muted small' }, readOnly ? 'Read only.' : 'Drag onto the canvas, or press Enter to add.'),
    h('ul', { class: 'plain' }, KIND_IDS.map((k) => h('li', {}, h('button', {
      type: 'button', class: 'palette-item', draggable: readOnly ? 'false' : 'true', dataset: { kind: k }, disabled: readOnly,
      'aria-label': `Add ${KINDS[k].label}`,
      ondragstart: (e) => { e.dataTransfer.setData('application/x-sdsim-kind', k); e.dataTransfer.setData('text/plain', k); e.dataTransfer.effectAllowed = 'copy'; },
      onclick: () => addComponent(k, freeSpot()),
    }, icon(k), h('span', {}, KINDS[k].label))))));

  const svg = s('svg', { class: 'canvas', role: 'application', 'aria-label': 'Design canvas', tabindex: '0' });
  const defs = s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '14', markerHeight: '14', markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' }, s('path', { d: 'M0 0L10 5L0 10z', class: 'arrowhead' })));
  const world = s('g', { class: 'world' });
  const edgesG = s('g', { class: 'edges' });
  const nodesG = s('g', { class: 'nodes' });
  const ghost = s('path', { class: 'ghost-edge', d: '' });
  const peersG = s('g', { class: 'peers', 'aria-hidden': 'true' });
  world.append(edgesG, ghost, nodesG, peersG);
  svg.append(defs, world);
  const problemsBar = h('div', { class: 'problems-bar', id: 'problems-bar', 'aria-live': 'polite' });
  const previewBar = h('div', { class: 'preview-bar', id: 'preview-bar' });
  const zoomBar = h('div', { class: 'zoom', role: 'group', 'aria-label': 'Zoom' },
    h('button', { type: 'button', 'aria-label': 'Zoom in', title: 'Zoom in (+)', onclick: () => zoomBy(1.25) }, '+'),
    h('button', { type: 'button', 'aria-label': 'Zoom out', title: 'Zoom out (−)', onclick: () => zoomBy(0.8) }, '−'),
    h('button', { type: 'button', 'aria-label': 'Fit the design in view', title: 'Fit (F)', onclick: () => fitView() }, 'Fit'));
  // The SVG sits out of flow on a stage of its own. As a flex item, any change in it (a run's
  // window: figures, colours, widths) had Chromium lay out the whole document and every text
  // in the SVG again, each frame; out of flow, only what changed is laid out.
  const canvasWrap = h('section', { class: 'canvas-wrap', 'aria-label': 'Canvas' }, h('div', { class: 'canvas-stage' }, svg), zoomBar, h('div', { class: 'canvas-foot' }, problemsBar, previewBar));
  const panel = h('aside', { class: 'panel', 'aria-label': 'Properties', id: 'panel' });
  // The run dock (views/run.js, with the charts and the stream) loads when first needed.
  let dock = null; let dockLoading = null; let closed = false;
  const editorEl = h('div', { class: 'editor' }, toolbar, banner, liveBanner, h('div', { class: 'editor-body' }, palette, canvasWrap, panel));
  el.append(editorEl);
  function ensureDock() {
    if (opts.linkToken) return Promise.resolve(null);
    if (!dockLoading) dockLoading = import('./run.js').then(({ runDock }) => {
      if (closed) return null;
      dock = runDock({
        project,
        components: () => comps().map((c) => ({ name: c.name, kind: c.kind })),
        design: () => st.doc.design,
        initialRun: opts.run,
        beforeStart: async () => {
          // Live: every edit of this page committed first; the run takes the project's
          // current design (no version), which the server reads from the live document.
          if (collab) {
            for (let i = 0; i < 100 && st.pending; i++) await new Promise((r) => setTimeout(r, 50));
            if (st.pending) throw new Error('your latest edits are not saved yet');
            return 0;
          }
          // A run runs the saved design: save what is on screen first, and run that version.
          if (!readOnly) {
            while (st.saving) await new Promise((r) => setTimeout(r, 50));
            if (st.dirty && !st.conflict) await save();
            if (st.dirty) throw new Error('the design is not saved yet');
          }
          return st.version;
        },
        onPaint: (live) => { st.live = live; paintLive(); },
        onScope: (name) => { if (name) select({ type: 'component', name }); },
        onToggle: () => requestAnimationFrame(fitView),
      });
      editorEl.append(dock.el);
      dock.setScope(st.sel?.type === 'component' ? st.sel.name : null);
      return dock;
    });
    return dockLoading;
  }
  if (opts.run) ensureDock();

  // ---------- model helpers ----------
  const comps = () => st.doc.design.components;
  const conns = () => st.doc.design.connections;
  const comp = (name) => comps().find((c) => c.name === name);
  const posOf = (name) => st.doc.layout.positions[st.doc.layout.ids[name]] || { x: 40, y: 40 };

  function uniqueName(base) {
    const names = new Set(comps().map((c) => c.name));
    for (let i = 1; ; i++) { const n = `${base} ${i}`; if (!names.has(n)) return n; }
  }

  const canEdit = () => !readOnly && !st.gone;

  /** Apply a change: `fn` edits a copy of st.doc. Coalesces typing into one undo step by key. */
  function change(fn, { key = null, panel: redrawPanel = true } = {}) {
    if (!canEdit()) return;
    const next = clone(st.doc);
    fn(next);
    commit(next, { key });
    afterChange(redrawPanel);
  }

  /**
   * Sends what differs between the document as it stands (without what is only on this
   * screen: a drag under way, the layout made up for components without one) and `next`, as
   * one edit. Keeps its inverse for undo, computed against the document it applied to.
   */
  function commit(next, { key = null, undoable = true } = {}) {
    const base = sink().doc();
    const ops = diffDocs(base, next);
    if (!ops.length) { st.doc = next; return false; }
    let after;
    try { after = sink().edit(ops); } catch (e) { toast(`Not applied: ${e.message}`, 'error'); return false; }
    st.doc = display(after);
    if (undoable) {
      const inverse = diffDocs(after, base);
      const now = Date.now();
      const top = st.undo[st.undo.length - 1];
      // Typing coalesces: the step's inverse grows by this change's, undone first.
      if (top && key && key === st.lastKey && now - st.lastAt < 1500 && top.ops.length + inverse.length <= MAX_OPS) top.ops = inverse.concat(top.ops);
      else if (inverse.length) { st.undo.push({ ops: inverse }); if (st.undo.length > 200) st.undo.shift(); }
      st.redo = [];
      st.lastKey = key; st.lastAt = now;
    }
    return true;
  }

  /** Applies an undo or redo step; answers the ops that revert it. */
  function replay(ops) {
    const base = sink().doc();
    let after;
    try { after = sink().edit(ops); } catch (e) { toast(`Not applied: ${e.message}`, 'error'); return []; }
    st.doc = display(after);
    return diffDocs(after, base);
  }

  function afterChange(redrawPanel = true) {
    if (!collab) st.dirty = true;
    if (dock && dock.visible) dock.refreshNames();
    setStatus();
    draw();
    if (redrawPanel) drawPanel();
    scheduleValidate();
    if (!collab) scheduleSave();
  }

  function doUndo() {
    if (!st.undo.length || !canEdit()) return;
    const back = replay(st.undo.pop().ops);
    if (back.length) st.redo.push({ ops: back });
    st.lastKey = null;
    fixSelection();
    afterChange();
  }
  function doRedo() {
    if (!st.redo.length || !canEdit()) return;
    const back = replay(st.redo.pop().ops);
    if (back.length) st.undo.push({ ops: back });
    st.lastKey = null;
    fixSelection();
    afterChange();
  }
  function fixSelection() {
    if (st.sel?.type === 'component' && !comp(st.sel.name)) st.sel = null;
    if (st.sel?.type === 'connection' && !conns()[st.sel.index]) st.sel = null;
  }

  function addComponent(kind, at) {
    const name = uniqueName(kind === 'client' ? 'clients' : KINDS[kind].label.toLowerCase());
    change((d) => {
      d.design.components.push(newComponent(kind, name));
      const id = newId();
      d.layout.ids[name] = id;
      d.layout.positions[id] = { x: Math.round(at.x), y: Math.round(at.y) };
    });
    select({ type: 'component', name });
    return name;
  }

  function freeSpot() {
    const r = svg.getBoundingClientRect();
    const c = toWorld(r.left + r.width / 2, r.top + r.height / 2);
    let p = { x: c.x - NODE_W / 2, y: c.y - NODE_H / 2 };
    const taken = () => comps().some((x) => { const q = posOf(x.name); return Math.abs(q.x - p.x) < NODE_W && Math.abs(q.y - p.y) < NODE_H; });
    for (let i = 0; i < 50 && taken(); i++) p = { x: p.x + 24, y: p.y + NODE_H + 16 };
    return p;
  }

  function renameComponent(oldName, newName) {
    newName = newName.trim();
    if (!newName || newName === oldName) return null;
    if (comp(newName)) return `another component is named ${newName}`;
    change((d) => {
      const c = d.design.components.find((x) => x.name === oldName);
      c.name = newName;
      d.layout.ids[newName] = d.layout.ids[oldName];
      delete d.layout.ids[oldName];
      for (const e of d.design.connections) { if (e.from === oldName) e.from = newName; if (e.to === oldName) e.to = newName; }
      for (const x of [...(d.design.chaos || []), ...(d.design.alerts || [])]) for (const k of ['component', 'from', 'to', 'source']) if (x && x[k] === oldName) x[k] = newName;
    }, { key: `rename:${st.doc.layout.ids[oldName]}`, panel: false });
    st.sel = { type: 'component', name: newName };
    draw();
    return null;
  }

  function deleteSelection() {
    if (!st.sel || readOnly) return;
    if (st.sel.type === 'component') {
      const name = st.sel.name;
      change((d) => {
        d.design.components = d.design.components.filter((c) => c.name !== name);
        d.design.connections = d.design.connections.filter((e) => e.from !== name && e.to !== name);
        delete d.layout.positions[d.layout.ids[name]];
        delete d.layout.ids[name];
      });
      toast(`Deleted ${name}`, 'info', { ms: 2500 });
    } else {
      const i = st.sel.index;
      change((d) => { d.design.connections.splice(i, 1); });
    }
    st.sel = null;
    drawPanel(); draw();
  }

  function connect(from, to) {
    if (from === to) return;
    if (conns().some((e) => e.from === from && e.to === to)) { toast(`${from} is already connected to ${to}`, 'info', { ms: 2500 }); return; }
    change((d) => { d.design.connections.push({ from, to }); });
    select({ type: 'connection', index: conns().length - 1 });
  }

  function copySelection() {
    if (st.sel?.type !== 'component') return;
    st.clipboard = clone(comp(st.sel.name));
  }
  function paste() {
    if (!st.clipboard || readOnly) return;
    const c = clone(st.clipboard);
    const base = c.name.replace(/( copy)?( \d+)?$/, '');
    c.name = uniqueName(`${base} copy`);
    const src = comp(st.clipboard.name) ? posOf(st.clipboard.name) : freeSpot();
    change((d) => {
      d.design.components.push(c);
      const id = newId();
      d.layout.ids[c.name] = id;
      d.layout.positions[id] = { x: src.x + 30, y: src.y + 30 };
    });
    select({ type: 'component', name: c.name });
  }

  function select(sel) {
    st.sel = sel;
    if (!restyleSelection(sel)) draw();
    drawPanel();
    if (dock) dock.setScope(sel?.type === 'component' ? sel.name : null);
    sendPresence();
  }

  // ---------- drawing ----------
  function toWorld(cx, cy) {
    const r = svg.getBoundingClientRect();
    return { x: (cx - r.left - st.view.x) / st.view.k, y: (cy - r.top - st.view.y) / st.view.k };
  }
  function applyView() { world.setAttribute('transform', `translate(${st.view.x},${st.view.y}) scale(${st.view.k})`); }

  function edgePath(a, b) {
    const x1 = a.x + NODE_W; const y1 = a.y + NODE_H / 2; const x2 = b.x; const y2 = b.y + NODE_H / 2;
    if (x2 > x1 + 20) { const dx = (x2 - x1) / 2; return `M${x1} ${y1}C${x1 + dx} ${y1} ${x2 - dx} ${y2} ${x2} ${y2}`; }
    const dx = 60 + Math.abs(x1 - x2) / 4;
    return `M${x1} ${y1}C${x1 + dx} ${y1} ${x2 - dx} ${y2} ${x2} ${y2}`;
  }

  /** Marks what `sel` names as selected, in place; false when it is not drawn (then draw()). */
  function restyleSelection(sel) {
    for (const o of svg.querySelectorAll('.node.selected, .edge.selected')) {
      o.classList.remove('selected');
      if (o.classList.contains('node')) o.setAttribute('aria-pressed', 'false');
    }
    if (!sel) return true;
    const el = sel.type === 'component' ? nodesG.querySelector(`.node[data-name="${CSS.escape(sel.name)}"]`)
      : sel.type === 'connection' ? edgesG.querySelector(`.edge[data-index="${sel.index}"]`) : null;
    if (!el) return false;
    el.classList.add('selected');
    if (sel.type === 'component') el.setAttribute('aria-pressed', 'true');
    return true;
  }

  /**
   * A dragged node moves alone: its group and its own connections' paths, not a redraw of
   * every node and edge (a large design has thousands).
   */
  function moveNode(d) {
    const g = nodesG.querySelector(`.node[data-name="${CSS.escape(d.name)}"]`);
    if (!g || st.doc.layout.ids[d.name] !== d.id) { draw(); return; }
    const p = posOf(d.name);
    g.setAttribute('transform', `translate(${p.x},${p.y})`);
    d.edges ??= [...edgesG.querySelectorAll('.edge')].filter((e) => e.dataset.from === d.name || e.dataset.to === d.name);
    for (const e of d.edges) {
      const a = posOf(e.dataset.from); const b = posOf(e.dataset.to);
      const path = edgePath(a, b);
      for (const x of e.querySelectorAll('path')) x.setAttribute('d', path);
      const t = e.querySelector('.edge-label');
      if (t) { t.setAttribute('x', (a.x + NODE_W + b.x) / 2); t.setAttribute('y', (a.y + b.y + NODE_H) / 2 - 6); }
    }
  }

  function draw() {
    clear(edgesG); clear(nodesG);
    if (drag) drag.edges = null;
    const util = new Map((st.preview?.components || []).map((c) => [c.name, c]));
    const named = new Set(comps().map((c) => c.name));
    conns().forEach((e, i) => {
      if (!named.has(e.from) || !named.has(e.to)) return;
      const d = edgePath(posOf(e.from), posOf(e.to));
      const probs = st.connProblems.get(i);
      const selected = st.sel?.type === 'connection' && st.sel.index === i;
      const g = s('g', { class: `edge${selected ? ' selected' : ''}${probs ? ' has-problem' : ''}`, 'data-from': e.from, 'data-to': e.to, 'data-index': i, tabindex: '0', role: 'button', 'aria-label': `Connection ${e.from} to ${e.to}${probs ? `, ${probs.length} problem(s)` : ''}` });
      g.append(s('path', { d, class: 'edge-hit' }), s('path', { d, class: 'edge-line', 'marker-end': 'url(#arrow)' }));
      const label = [e.probability !== undefined ? `p=${e.probability}` : null, e.latency_ms !== undefined ? `${e.latency_ms} ms` : null].filter(Boolean).join(' · ');
      if (label) { const a = posOf(e.from); const b = posOf(e.to); g.append(s('text', { x: (a.x + NODE_W + b.x) / 2, y: (a.y + b.y + NODE_H) / 2 - 6, class: 'edge-label' }, label)); }
      if (probs) g.append(s('title', {}, probs.map((p) => p.message).join('\n')));
      g.addEventListener('pointerdown', (ev) => { ev.stopPropagation(); select({ type: 'connection', index: i }); });
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select({ type: 'connection', index: i }); } });
      edgesG.append(g);
    });
    for (const c of comps()) {
      const p = posOf(c.name);
      const pv = util.get(c.name);
      const probs = st.compProblems.get(c.name);
      const selected = st.sel?.type === 'component' && st.sel.name === c.name;
      const u = pv ? pv.utilisation : undefined;
      const g = s('g', {
        class: `node kind-${c.kind} ${utilClass(u)}${selected ? ' selected' : ''}${probs ? ' has-problem' : ''}`,
        transform: `translate(${p.x},${p.y})`, 'data-name': c.name, 'data-kind': c.kind, tabindex: '0', role: 'button',
        'aria-label': `${c.name}, ${KINDS[c.kind]?.label || c.kind}${u !== undefined ? `, predicted utilisation ${Math.round(u * 100)}%` : ''}${probs ? `, ${probs.length} problem(s)` : ''}`,
        'aria-pressed': selected ? 'true' : 'false',
      });
      g.append(s('rect', { class: 'node-box', width: NODE_W, height: NODE_H, rx: 8 }));
      g.append(s('path', { d: iconSvgPath(c.kind), transform: 'translate(10,10)', class: 'icon' }));
      const nm = c.name.length > 16 ? `${c.name.slice(0, 15)}…` : c.name;
      g.append(s('text', { x: 40, y: 24, class: 'node-name' }, nm));
      g.append(s('text', { x: 40, y: 42, class: 'node-kind' }, u !== undefined ? `${Math.round(u * 100)}% busy` : (KINDS[c.kind]?.label || c.kind)));
      g.append(s('rect', { class: 'util-bar', x: 0, y: NODE_H - 4, width: u !== undefined ? Math.min(1, u) * NODE_W : 0, height: 4, rx: 2 }));
      if (probs) {
        const badge = s('g', { class: 'problem-badge', transform: `translate(${NODE_W - 4},4)` }, s('circle', { r: 10 }), s('text', { y: 4, 'text-anchor': 'middle' }, String(probs.length)), s('title', {}, probs.map((x) => x.message).join('\n')));
        g.append(badge);
      }
      if (!readOnly) {
        const port = s('circle', { class: 'port', cx: NODE_W, cy: NODE_H / 2, r: 7, 'aria-hidden': 'true' }, s('title', {}, 'Drag to another component to connect'));
        port.addEventListener('pointerdown', (ev) => startConnect(ev, c.name));
        g.append(port);
      }
      g.addEventListener('pointerdown', (ev) => startDrag(ev, c.name));
      g.addEventListener('keydown', (ev) => nodeKey(ev, c.name));
      g.addEventListener('focus', () => { if (!(st.sel?.type === 'component' && st.sel.name === c.name)) { st.sel = { type: 'component', name: c.name }; drawPanel(); g.classList.add('selected'); for (const o of nodesG.querySelectorAll('.node.selected')) if (o !== g) o.classList.remove('selected'); if (dock) dock.setScope(c.name); sendPresence(); } });
      nodesG.append(g);
    }
    undoBtn.disabled = !st.undo.length; redoBtn.disabled = !st.redo.length;
    drawProblemsBar();
    paintPeers();
    if (st.live) paintLive();
  }

  /**
   * A run's window on the canvas, in place (no redraw: ten windows a second on 63
   * components): each component coloured by its utilisation, red when it fails requests or
   * is down, its busy share and throughput written under its name; each connection as wide
   * as its flow, moving while the run runs. `st.live` null: back to the analytic preview.
   */
  function paintLive() {
    const live = st.live;
    const util = live ? null : new Map((st.preview?.components || []).map((c) => [c.name, c]));
    svg.classList.toggle('live', !!live);
    for (const g of nodesG.children) {
      const name = g.dataset.name; const kind = g.dataset.kind;
      const kindText = g.querySelector('.node-kind'); const bar = g.querySelector('.util-bar');
      let u; let text; let down = false; let failing = false;
      if (live) {
        const m = live.byName.get(name);
        if (kind === 'client') { text = live.e2e ? `${fmt((live.e2e.arrivals || 0) / live.dt)}/s sent` : ''; } else if (m) {
          u = m.utilisation || 0;
          down = m.replicas_up === 0;
          failing = (m.errors || 0) + (m.drops || 0) > 0.01 * Math.max(1, m.arrivals || 0);
          text = down ? 'DOWN' : failing ? `${Math.round(u * 100)}% · ${fmt(((m.errors || 0) + (m.drops || 0)) / live.dt)} failed/s` : `${Math.round(u * 100)}% · ${fmt(m.throughput)}/s`;
        }
        g.dataset.util = u === undefined ? '' : u.toFixed(3);
      } else {
        const pv = util.get(name);
        u = pv ? pv.utilisation : undefined;
        text = u !== undefined ? `${Math.round(u * 100)}% busy` : (KINDS[kind]?.label || kind);
        delete g.dataset.util;
      }
      // Only what changed (ten windows a second: every untouched node is style and layout saved).
      const uc = utilClass(failing || down ? 1 : u);
      if (g.dataset.uc !== uc) {
        if (g.dataset.uc) g.classList.remove(g.dataset.uc);
        else for (const c of ['util-low', 'util-mid', 'util-high', 'util-over']) g.classList.remove(c);
        if (uc) g.classList.add(uc);
        g.dataset.uc = uc;
      }
      if (g.classList.contains('failing') !== failing) g.classList.toggle('failing', failing);
      if (g.classList.contains('down') !== down) g.classList.toggle('down', down);
      // The text node's data, not textContent: the text keeps its node and layout object.
      if (kindText && text !== undefined && kindText.textContent !== text) {
        if (kindText.firstChild) kindText.firstChild.data = text; else kindText.textContent = text;
      }
      const bw = String(u !== undefined ? Math.round(Math.min(1, u) * NODE_W) : 0);
      if (bar && bar.getAttribute('width') !== bw) bar.setAttribute('width', bw);
    }
    liveFigures();
    const flows = live?.flows;
    let top = 0;
    if (flows) for (const v of flows.values()) if (v > top) top = v;
    // At most 24 connections move (the busiest): a large design's canvas stays cheap to paint.
    const moveFrom = flows && flows.size > 24 ? nthLargest(flows.values(), 24) : 0;
    for (const g of edgesG.children) {
      const line = g.querySelector('.edge-line');
      const f = flows ? flows.get(Number(g.dataset.index)) || 0 : null;
      if (f === null || !top) { line.style.strokeWidth = ''; g.classList.remove('flowing', 'moving'); delete g.dataset.flow; continue; }
      const sw = `${Math.round((1.5 + 6 * Math.sqrt(f / top)) * 2) / 2}px`; // half pixels: fewer repaints
      if (line.style.strokeWidth !== sw) line.style.strokeWidth = sw;
      if (g.classList.contains('flowing') !== f > 0) g.classList.toggle('flowing', f > 0);
      const mv = f > 0 && f >= moveFrom && !!live.moving;
      if (g.classList.contains('moving') !== mv) g.classList.toggle('moving', mv);
      g.dataset.flow = f.toFixed(1);
    }
  }

  function nodeKey(ev, name) {
    if (ev.key === 'Enter') { ev.preventDefault(); select({ type: 'component', name }); panel.querySelector('input')?.focus(); return; }
    const step = ev.shiftKey ? 50 : 10;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[ev.key] && !readOnly) {
      ev.preventDefault();
      const [dx, dy] = moves[ev.key];
      change((d) => { const id = d.layout.ids[name]; const p = d.layout.positions[id]; d.layout.positions[id] = { x: p.x + dx, y: p.y + dy }; }, { key: `move:${name}`, panel: false });
      svg.querySelector(`.node[data-name="${CSS.escape(name)}"]`)?.focus();
    }
  }

  // ---------- pointer interactions ----------
  let drag = null;
  function startDrag(ev, name) {
    if (ev.button !== 0) return;
    ev.stopPropagation();
    if (!(st.sel?.type === 'component' && st.sel.name === name)) select({ type: 'component', name });
    if (!canEdit()) return;
    const w = toWorld(ev.clientX, ev.clientY);
    const p = posOf(name);
    // By layout id: a rename by someone else during the drag does not lose it.
    drag = { kind: 'node', id: st.doc.layout.ids[name], name, dx: w.x - p.x, dy: w.y - p.y, moved: false, pos: null, edges: null };
    svg.setPointerCapture(ev.pointerId);
  }
  function startConnect(ev, name) {
    if (ev.button !== 0) return;
    ev.stopPropagation();
    drag = { kind: 'edge', from: name };
    svg.setPointerCapture(ev.pointerId);
  }
  svg.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0) return;
    drag = { kind: 'pan', sx: ev.clientX, sy: ev.clientY, vx: st.view.x, vy: st.view.y, moved: false };
    svg.setPointerCapture(ev.pointerId);
  });
  svg.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    if (drag.kind === 'node') {
      const w = toWorld(ev.clientX, ev.clientY);
      const id = drag.id;
      const np = { x: Math.round(w.x - drag.dx), y: Math.round(w.y - drag.dy) };
      const op = st.doc.layout.positions[id];
      if (!op) { drag = null; return; } // deleted meanwhile (by someone else)
      if (!drag.moved && Math.abs(np.x - op.x) + Math.abs(np.y - op.y) < 3) return;
      drag.moved = true;
      // Only on this screen until the drop: then the move is one edit.
      drag.pos = np;
      st.doc.layout.positions[id] = np;
      moveNode(drag);
    } else if (drag.kind === 'edge') {
      const w = toWorld(ev.clientX, ev.clientY);
      const a = posOf(drag.from);
      ghost.setAttribute('d', `M${a.x + NODE_W} ${a.y + NODE_H / 2}L${w.x} ${w.y}`);
    } else if (drag.kind === 'pan') {
      st.view.x = drag.vx + ev.clientX - drag.sx; st.view.y = drag.vy + ev.clientY - drag.sy;
      drag.moved = true;
      applyView();
    }
  });
  svg.addEventListener('pointerup', (ev) => {
    const d = drag; drag = null;
    if (!d) return;
    if (d.kind === 'node' && d.moved) {
      st.lastKey = null;
      commit(st.doc);
      afterChange(false);
    } else if (d.kind === 'edge') {
      ghost.setAttribute('d', '');
      const target = document.elementFromPoint(ev.clientX, ev.clientY)?.closest?.('.node');
      if (target && target.dataset.name !== d.from) connect(d.from, target.dataset.name);
    } else if (d.kind === 'pan' && !d.moved) {
      if (st.sel) select(null);
    }
  });
  svg.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    zoomBy(ev.deltaY < 0 ? 1.1 : 1 / 1.1, ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  svg.addEventListener('dragover', (ev) => { if (canEdit()) { ev.preventDefault(); ev.dataTransfer.dropEffect = 'copy'; } });
  svg.addEventListener('drop', (ev) => {
    ev.preventDefault();
    const kind = ev.dataTransfer.getData('application/x-sdsim-kind') || ev.dataTransfer.getData('text/plain');
    if (!KINDS[kind] || !canEdit()) return;
    const w = toWorld(ev.clientX, ev.clientY);
    addComponent(kind, { x: w.x - NODE_W / 2, y: w.y - NODE_H / 2 });
  });

  function zoomBy(f, cx, cy) {
    const r = svg.getBoundingClientRect();
    const k = Math.min(2.5, Math.max(0.2, st.view.k * f));
    const mx = cx ?? r.width / 2; const my = cy ?? r.height / 2;
    st.view.x = mx - ((mx - st.view.x) * k) / st.view.k; st.view.y = my - ((my - st.view.y) * k) / st.view.k; st.view.k = k;
    applyView();
  }

  function fitView() {
    const ps = comps().map((c) => posOf(c.name));
    const r = svg.getBoundingClientRect();
    if (!ps.length || !r.width) return;
    const minX = Math.min(...ps.map((p) => p.x)) - 30; const minY = Math.min(...ps.map((p) => p.y)) - 30;
    const maxX = Math.max(...ps.map((p) => p.x + NODE_W)) + 30; const maxY = Math.max(...ps.map((p) => p.y + NODE_H)) + 30;
    const k = Math.min(1.2, Math.max(0.3, Math.min(r.width / (maxX - minX), r.height / (maxY - minY))));
    st.view = { k, x: (r.width - (maxX - minX) * k) / 2 - minX * k, y: (r.height - (maxY - minY) * k) / 2 - minY * k };
    applyView();
  }

  // ---------- the side panel (editor-panel.js) ----------
  const sidebar = sidePanel(panel, {
    st, readOnly: () => readOnly, change, comp, comps, conns, renameComponent, connect,
    duplicate: () => { copySelection(); paste(); }, deleteSelection, runFigures: !opts.linkToken,
  });
  function drawPanel() { sidebar.draw(); }
  function refreshPanelProblems() { sidebar.refreshProblems(); }
  function liveFigures() { sidebar.liveFigures(); }

  function drawProblemsBar() {
    const n = st.problems.length;
    problemsBar.className = `problems-bar ${st.validated ? (n ? 'bad' : 'good') : 'pending'}`;
    problemsBar.textContent = st.validated ? (n ? `${n} problem${n > 1 ? 's' : ''}` : 'Valid design') : 'Checking…';
    const p = st.preview;
    previewBar.textContent = p ? (p.saturated?.length ? `Saturated: ${p.saturated.join(', ')}` : p.end_to_end_response_ms != null ? `Predicted response ${p.end_to_end_response_ms.toFixed(1)} ms` : '') : '';
  }

  // ---------- validation and preview ----------
  let vTimer = null; let vSeq = 0;
  function scheduleValidate() { clearTimeout(vTimer); vTimer = setTimeout(validate, VALIDATE_MS); }
  async function validate() {
    const seq = ++vSeq;
    const sent = clone(st.doc.design);
    let r;
    try { r = await api('POST', '/api/simulations/validate', { design: sent }); } catch (e) {
      if (e instanceof ApiError && e.status === 400) r = { problems: [{ path: e.field || '$', message: e.message }], preview: null };
      else return;
    }
    if (seq !== vSeq) return;
    st.validated = true;
    st.problems = r.problems || [];
    st.preview = r.preview || null;
    st.compProblems = new Map(); st.connProblems = new Map(); st.globalProblems = [];
    for (const p of st.problems) {
      let m = /^\$\.components\[(\d+)\]/.exec(p.path);
      if (m && sent.components[+m[1]]) {
        const n = sent.components[+m[1]].name;
        if (!st.compProblems.has(n)) st.compProblems.set(n, []);
        st.compProblems.get(n).push(p); continue;
      }
      m = /^\$\.connections\[(\d+)\]/.exec(p.path);
      if (m) { const i = +m[1]; if (!st.connProblems.has(i)) st.connProblems.set(i, []); st.connProblems.get(i).push(p); continue; }
      st.globalProblems.push(p);
    }
    draw();
    // Refresh the problem list and figures of the panel without taking the focus away.
    const hasFocus = document.activeElement && panel.contains(document.activeElement);
    if (!hasFocus) drawPanel(); else refreshPanelProblems();
  }

  // ---------- saving ----------
  function setStatus(text) {
    if (collab) {
      // Live: "Live" once every edit of this page is committed (data-state live; sending
      // while some are on their way).
      const s = st.gone ? 'gone' : st.liveStatus;
      status.textContent = text || {
        connecting: 'Connecting…', live: readOnly ? 'Live · read only' : 'Live', reconnecting: 'Reconnecting…',
        offline: readOnly ? 'Offline' : 'Offline: edits will be sent when back', gone: 'Not live',
      }[s] || '';
      status.dataset.state = s === 'live' && st.pending ? 'sending' : s;
      status.title = st.pending ? `${st.pending} edit${st.pending > 1 ? 's' : ''} not yet saved` : '';
      return;
    }
    if (readOnly) return;
    status.textContent = text || (st.conflict ? 'Conflict: not saved' : st.saving ? 'Saving…' : st.dirty ? 'Unsaved changes' : 'Saved');
    status.dataset.state = st.conflict ? 'conflict' : st.saving ? 'saving' : st.dirty ? 'dirty' : 'saved';
  }
  let sTimer = null;
  function scheduleSave() { clearTimeout(sTimer); sTimer = setTimeout(() => save(), SAVE_MS); }
  async function save({ named = false, message = '' } = {}) {
    if (readOnly || st.conflict) return false;
    if (st.saving) { st.again = true; return false; }
    clearTimeout(sTimer);
    st.saving = true; setStatus();
    const sent = JSON.stringify(st.doc);
    const doc = JSON.parse(sent);
    const body = { design: doc.design, layout: doc.layout };
    if (named) {
      body.named = true; body.message = message;
      // The service writes a version only when the design or layout changed; a named save
      // of an unchanged design must still leave a version, so the layout notes the save.
      body.layout = { ...body.layout, named_save: { message, at: new Date().toISOString() } };
    }
    try {
      const r = await api('PATCH', `/api/projects/${project.id}`, body, { headers: { 'If-Match': `"${st.version}"` } });
      st.version = r.project.version; st.liveWait = false;
      if (named) st.doc.layout.named_save = body.layout.named_save;
      st.base = { design: doc.design, layout: body.layout, version: st.version };
      if (JSON.stringify({ ...st.doc, layout: { ...st.doc.layout, named_save: undefined } }) === JSON.stringify({ ...JSON.parse(sent), layout: { ...JSON.parse(sent).layout, named_save: undefined } })) st.dirty = false;
      return true;
    } catch (e) {
      if (closed) {
        // The editor was left with changes unsaved: a few quiet tries, then one word on
        // whatever page is open (no dialog over it).
        st.closedTries = (st.closedTries || 0) + 1;
        const again = st.closedTries < 5 && !(e instanceof ApiError && e.status === 412);
        if (again) { clearTimeout(sTimer); sTimer = setTimeout(() => save(), 2000 * st.closedTries); } else toast(`Your last changes to “${project.name}” were not saved: ${errorText(e)}`, 'error');
        return false;
      }
      if (e instanceof ApiError && e.status === 412) { st.conflict = true; setStatus(); showConflict(); } else if (e instanceof ApiError && e.code === 'live_session') {
        // Someone edits it live and their edits are not a version yet (they are within
        // seconds): say so once, and try again until this save goes through or is refused.
        if (!st.liveWait) toast('Someone is editing this project live: your changes are saved once their edits are (a few seconds).', 'info');
        st.liveWait = true; clearTimeout(sTimer); sTimer = setTimeout(() => save({ named, message }).then((ok) => { if (ok && named) toast(`Saved version ${st.version}`, 'ok'); }), 2000);
      } else { toast(`Not saved: ${errorText(e)}`, 'error'); setStatus('Not saved (will retry)'); scheduleSave(); }
      return false;
    } finally {
      st.saving = false; setStatus();
      if (st.again) { st.again = false; if (st.dirty) scheduleSave(); }
    }
  }
  async function namedSave() {
    if (readOnly) return;
    const message = await dialog('Save a version', (close) => {
      const inp = h('input', { name: 'message', value: '', autofocus: true, placeholder: 'What changed' });
      const f = h('form', {}, field('Description', inp), h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => close(undefined) }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'Save')));
      f.addEventListener('submit', (e) => { e.preventDefault(); close(inp.value.trim() || 'saved version'); });
      return f;
    });
    if (message === undefined) return;
    if (collab) {
      // One's own edits first (the server names what it has), then the live document.
      for (let i = 0; i < 100 && st.pending; i++) await new Promise((r) => setTimeout(r, 50));
      if (st.pending) { toast('Your latest edits are not saved yet; try again in a moment.', 'error'); return; }
      try {
        const r = await api('PATCH', `/api/projects/${project.id}`, { named: true, message });
        st.version = r.project.version;
        toast(`Saved version ${r.project.version}`, 'ok');
      } catch (e) { toast(errorText(e), 'error'); }
      return;
    }
    while (st.saving) await new Promise((r) => setTimeout(r, 50));
    if (await save({ named: true, message })) toast(`Saved version ${st.version}`, 'ok');
  }
  async function saveName() {
    const name = nameInput.value.trim();
    if (!name || name === project.name || readOnly) return;
    while (st.saving) await new Promise((r) => setTimeout(r, 50));
    if (st.dirty && !st.conflict) await save();
    try {
      // With the version this page holds, so a rename never slips between a save and the next
      // (live, versions come from the live document as it goes: the name is not the design).
      const r = await api('PATCH', `/api/projects/${project.id}`, { name }, collab ? {} : { headers: { 'If-Match': `"${st.version}"` } });
      project.name = r.project.name;
      if (st.base.version === st.version) st.base.version = r.project.version;
      st.version = r.project.version;
      toast('Renamed the project', 'ok', { ms: 2000 });
    } catch (e) { toast(errorText(e), 'error'); nameInput.value = project.name; }
  }
  nameInput.addEventListener('change', saveName);

  // ---------- the conflict screen ----------
  async function showConflict() {
    let theirs;
    try { theirs = (await api('GET', `/api/projects/${project.id}`)).project; } catch (e) { toast(errorText(e), 'error'); return; }
    const mine = clone(st.doc);
    let theirDiff;
    try { theirDiff = (await api('GET', `/api/projects/${project.id}/diff?from=${st.base.version}&to=${theirs.version}`)).diff; } catch {
      theirDiff = diffDesigns(st.base.design, st.base.layout, theirs.design, theirs.layout);
    }
    const myDiff = diffDesigns(st.base.design, st.base.layout, mine.design, mine.layout);
    const merged = mergeDesigns({ design: normaliseDesign(st.base.design), layout: st.base.layout || {} }, mine, { design: normaliseDesign(theirs.design), layout: theirs.layout || {} });
    if (isEmptyDiff(theirDiff) && !merged.clashes.length) {
      // They changed only what this page does not edit as a design (the name, tags, where
      // components sit): take both without asking.
      applyMerge(merged, theirs, mine);
      if (await save()) toast('Someone saved meanwhile (not the design): merged with yours', 'info');
      return;
    }
    const choice = await dialog('Someone else saved this project', (close) => h('div', { class: 'conflict', id: 'conflict' },
      h('p', {}, `While you were editing, version ${theirs.version} was saved (you started from version ${st.base.version}). Nothing of yours is lost: choose what to keep.`),
      h('div', { class: 'grid2' },
        h('section', {}, h('h3', {}, 'Their changes'), renderDiff(theirDiff, 'Only the name, tags or layout changed.')),
        h('section', {}, h('h3', {}, 'Your unsaved changes'), renderDiff(myDiff, 'Only positions changed.'))),
      merged.clashes.length ? h('div', { class: 'clashes' }, h('p', {}, 'Merging keeps your value where you both changed the same thing:'),
        h('ul', {}, merged.clashes.map((c) => h('li', {}, c)))) : h('p', { class: 'small' }, 'Your changes and theirs touch different things: merging keeps both.'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', onclick: () => close('merge') }, 'Merge: theirs plus my changes'),
        h('button', { type: 'button', onclick: () => close('mine') }, 'Keep mine (save over theirs)'),
        h('button', { type: 'button', onclick: () => close('theirs') }, 'Take theirs, save mine as a copy'),
        h('button', { type: 'button', onclick: () => close('download') }, 'Download mine'))), { class: 'wide' });
    if (choice === 'download' || choice === undefined) {
      if (choice === 'download') download(`${project.name}-mine.json`, JSON.stringify({ design: mine.design, layout: mine.layout }, null, 2));
      showConflict(); return;
    }
    if (choice === 'merge') {
      applyMerge(merged, theirs, mine);
      if (await save()) toast('Merged: their changes and yours are saved', 'ok');
      return;
    }
    if (choice === 'mine') {
      st.version = theirs.version; st.conflict = false; st.dirty = true;
      if (await save()) toast('Your version is saved; theirs stays in the history', 'ok');
    } else {
      try {
        const copy = await api('POST', '/api/projects', { name: `${project.name} (my copy)`, design: mine.design, layout: mine.layout });
        toast(h('span', {}, 'Your changes are in ', h('a', { href: `/projects/${copy.project.id}` }, copy.project.name)), 'ok', { ms: 10000 });
      } catch (e) { download(`${project.name}-mine.json`, JSON.stringify(mine, null, 2)); toast(`Copy failed (${errorText(e)}); downloaded instead`, 'error'); }
      loadServer(theirs);
    }
  }

  function applyMerge(merged, theirs, mine) {
    st.lastKey = null;
    const design = normaliseDesign(merged.design);
    commit({ design, layout: normaliseLayout(design, merged.layout).layout });
    st.version = theirs.version;
    st.base = { design: clone(theirs.design ?? {}), layout: clone(theirs.layout ?? {}), version: theirs.version };
    st.conflict = false; st.dirty = true;
    fixSelection(); draw(); drawPanel(); scheduleValidate();
  }

  function loadServer(p) {
    const design = normaliseDesign(p.design);
    st.doc = { design, layout: normaliseLayout(design, p.layout).layout };
    local.shown = clone(st.doc);
    st.version = p.version;
    st.base = { design: clone(p.design ?? {}), layout: clone(p.layout ?? {}), version: p.version };
    st.conflict = false; st.dirty = false; st.undo = []; st.redo = []; st.sel = null;
    setStatus(); draw(); drawPanel(); scheduleValidate();
  }

  // ---------- project actions ----------
  async function openHistory() {
    if (collab) {
      // Live, the document is ahead of every version: a rollback is an edit of it (the
      // server refuses REST design changes during a live session).
      const r = await historyDialog(project, null, { readOnly, rollback: liveRollback });
      if (r && r.rolledBack) toast(`Rolled back to version ${r.rolledBack}`, 'ok');
      return;
    }
    while (st.saving) await new Promise((r) => setTimeout(r, 50));
    if (st.dirty && !readOnly) await save();
    const r = await historyDialog(project, st.version, { readOnly });
    if (r && r.project) { loadServer(r.project); toast(`Rolled back: now version ${r.project.version}`, 'ok'); }
  }
  async function liveRollback(version) {
    const v = await api('GET', `/api/projects/${project.id}/versions/${version}`);
    if (!canEdit()) throw new Error('this project can no longer be edited here');
    commit(display({ design: v.design ?? {}, layout: v.layout ?? {} }), { undoable: false });
    // As before live editing: a rollback is not undone with Ctrl+Z (the history has both).
    st.undo = []; st.redo = []; st.lastKey = null; st.sel = null;
    afterChange();
  }
  async function fork() {
    try {
      const path = opts.linkToken ? `/api/links/${encodeURIComponent(opts.linkToken)}/fork` : `/api/projects/${project.id}/fork`;
      const r = await api('POST', path, opts.linkToken ? undefined : { name: `${project.name} (fork)` });
      toast(`Forked into ${r.project.name}`, 'ok');
      navigate(`/projects/${r.project.id}`);
    } catch (e) { toast(errorText(e), 'error'); }
  }
  async function exportProject() {
    try {
      const r = await api('GET', `/api/projects/${project.id}/export?versions=true`);
      download(`${project.name.replace(/[^\w.-]+/g, '_')}.sdsim.json`, JSON.stringify(r, null, 2));
    } catch (e) { toast(errorText(e), 'error'); }
  }
  async function trash() {
    if (!(await confirmDialog('Move to trash', `Move "${project.name}" to the trash? You can restore it from the Trash tab.`, 'Move to trash'))) return;
    try { await api('DELETE', `/api/projects/${project.id}`); st.dirty = false; navigate('/projects?tab=trash'); } catch (e) { toast(errorText(e), 'error'); }
  }

  // ---------- keyboard ----------
  function onKey(e) {
    if (document.querySelector('dialog[open]')) return;
    const inField = e.target.closest && e.target.closest('input, textarea, select');
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === 's') { e.preventDefault(); namedSave(); return; }
    if (inField || (e.target.closest && e.target.closest('#run-dock'))) return;
    if (mod && e.key.toLowerCase() === 'z') { e.preventDefault(); if (e.shiftKey) doRedo(); else doUndo(); return; }
    if (mod && e.key.toLowerCase() === 'y') { e.preventDefault(); doRedo(); return; }
    if (mod && e.key.toLowerCase() === 'c') { copySelection(); return; }
    if (mod && e.key.toLowerCase() === 'v') { e.preventDefault(); paste(); return; }
    if (mod && e.key.toLowerCase() === 'd') { e.preventDefault(); copySelection(); paste(); return; }
    if (e.key === 'Delete' || e.key === 'Backspace') { if (st.sel) { e.preventDefault(); deleteSelection(); } return; }
    if (e.key === 'Escape') { select(null); return; }
    if (e.key === 'f' && !mod) fitView();
    if ((e.key === '+' || e.key === '=') && !mod) zoomBy(1.25);
    if (e.key === '-' && !mod) zoomBy(0.8);
  }
  document.addEventListener('keydown', onKey);
  const beforeUnload = (e) => {
    // Live: only edits that could not be sent yet (offline) would be lost.
    if (collab) { if (st.pending && st.liveStatus !== 'live') { e.preventDefault(); e.returnValue = ''; } return; }
    if (st.dirty && !readOnly) { save(); e.preventDefault(); e.returnValue = ''; }
  };
  window.addEventListener('beforeunload', beforeUnload);
  // Leaving: the live session lingers until what it sent is committed (collab.js close()).
  const leave = () => { if (st.dirty && !readOnly && !collab) save(); return true; };
  guard.leave = leave;

  // ---------- live collaboration ----------
  function startLive() {
    collab = new CollabSession(project.id, {
      onDocument: (doc, info) => liveDocument(doc, info),
      onPresence: (peers) => { st.peers = peers; drawPresence(); },
      onRole: (role) => liveRole(role),
      onError: (f) => toast({
        read_only: 'You can only view this project: that change was not applied.',
        invalid_edit: `That change was refused: ${f.message || 'not a valid edit'}.`,
      }[f.code] || `Live editing: ${f.message || f.code}`, 'error'),
      onStatus: (state) => {
        st.liveStatus = state;
        if (state === 'gone') {
          st.gone = true;
          st.peers = []; drawPresence();
          endEditing(`This project is no longer available to you: it was deleted, or your access to it was removed.${st.pending ? ' Your latest changes were not saved.' : ''}`);
        }
        setStatus();
      },
      onPending: (n) => { st.pending = n; setStatus(); },
    }, { design: project.design ?? {}, layout: project.layout ?? {} });
    window.sdsimDebug = { ...(window.sdsimDebug || {}), dropCollab: () => collab?.drop() };
  }

  /** What the side panel shows of the document: redrawn only when that changed. */
  function panelKey() {
    const sel = st.sel;
    if (sel?.type === 'component') return JSON.stringify([comp(sel.name) || null, comps().map((c) => c.name)]);
    if (sel?.type === 'connection') return JSON.stringify([conns()[sel.index] || null, sel.index]);
    const { components, connections, ...rest } = st.doc.design;
    return JSON.stringify(rest);
  }

  /**
   * The document changed under the page (someone's edit, the first sync, an edit refused):
   * redraw, keeping the selection (by layout id: a rename keeps it), a drag under way and
   * the field being typed in.
   */
  function liveDocument(doc, { first = false } = {}) {
    const selId = st.sel?.type === 'component' ? st.doc.layout.ids[st.sel.name] : null;
    const selConn = st.sel?.type === 'connection' ? conns()[st.sel.index] : null;
    const panelBefore = panelKey();
    const selBefore = JSON.stringify(st.sel);
    st.doc = display(doc);
    if (drag?.kind === 'node' && drag.moved) {
      if (Object.values(st.doc.layout.ids).includes(drag.id)) st.doc.layout.positions[drag.id] = drag.pos;
      else drag = null;
    }
    if (selId) {
      const n = Object.keys(st.doc.layout.ids).find((x) => st.doc.layout.ids[x] === selId && comp(x));
      st.sel = n ? { type: 'component', name: n } : comp(st.sel.name) ? st.sel : null;
    } else if (selConn) {
      const i = conns().findIndex((e) => e.from === selConn.from && e.to === selConn.to);
      st.sel = i >= 0 ? { type: 'connection', index: i } : null;
    } else fixSelection();
    if (first) {
      st.version = collab.version ?? st.version;
      // A design without a layout (a template, an import) gets one, for everyone.
      if (canEdit()) commit(st.doc, { undoable: false });
      if (!drag) requestAnimationFrame(fitView);
    }
    draw();
    const selMoved = JSON.stringify(st.sel) !== selBefore;
    if (selMoved || panelKey() !== panelBefore) drawPanel();
    if (selMoved) { if (dock) dock.setScope(st.sel?.type === 'component' ? st.sel.name : null); sendPresence(); }
    if (dock && dock.visible) dock.refreshNames();
    scheduleValidate();
  }

  function liveRole(role) {
    const editable = role === 'owner' || role === 'editor';
    if (st.gone || editable === !readOnly) return;
    if (!editable) endEditing('Your access to this project changed: you can view it, not edit it.');
    else showBanner('You can edit this project now.', h('button', { type: 'button', onclick: () => navigate(location.pathname + location.search, true) }, 'Reload to edit'));
  }

  function showBanner(text, ...extra) {
    clear(liveBanner).append(text, ' ', ...extra);
    liveBanner.hidden = false;
  }

  /** Nothing more can be edited on this page (the live session ended, the access changed). */
  function endEditing(message) {
    showBanner(message);
    toast(message, 'error', { ms: 8000 });
    if (readOnly) return;
    readOnly = true;
    drag = null;
    for (const b of palette.querySelectorAll('button')) { b.disabled = true; b.draggable = false; }
    for (const b of [undoBtn, redoBtn]) b.hidden = true;
    nameInput.readOnly = true;
    draw(); drawPanel(); setStatus();
  }

  /** This person's selection and pointer, for the others (throttled by the session). */
  function sendPresence() {
    if (!collab) return;
    let sel = null;
    if (st.sel?.type === 'component') sel = { type: 'component', name: st.sel.name };
    else if (st.sel?.type === 'connection' && conns()[st.sel.index]) sel = { type: 'connection', from: conns()[st.sel.index].from, to: conns()[st.sel.index].to };
    // A presence frame is at most 1 KiB.
    if (sel && JSON.stringify(sel).length > 800) sel = null;
    collab.presence({ selection: sel, pointer: st.pointer });
  }
  svg.addEventListener('pointermove', (ev) => {
    if (!collab) return;
    const w = toWorld(ev.clientX, ev.clientY);
    st.pointer = { x: Math.round(w.x), y: Math.round(w.y) };
    sendPresence();
  });
  svg.addEventListener('pointerleave', () => { if (collab && st.pointer) { st.pointer = null; sendPresence(); } });

  /** The others: a chip per person in the toolbar, a pointer per session on the canvas. */
  function drawPresence() {
    if (!presenceBar) return;
    const people = new Map();
    for (const p of st.peers) if (!people.has(p.user_id)) people.set(p.user_id, p);
    clear(presenceBar);
    for (const p of people.values()) {
      const chip = h('span', { class: 'peer-chip', role: 'listitem', dataset: { user: p.user_id }, title: `${p.name || 'Someone'} is here` }, p.name || 'Someone');
      chip.style.setProperty('--peer', p.colour || '#64748b');
      presenceBar.append(chip);
    }
    const keep = new Set();
    for (const p of st.peers) {
      const pt = p.pointer;
      if (!pt || !Number.isFinite(pt.x) || !Number.isFinite(pt.y)) continue;
      keep.add(p.session);
      let g = [...peersG.children].find((x) => x.dataset.session === p.session);
      if (!g) {
        g = s('g', { class: 'remote-pointer', 'data-session': p.session, 'data-user': p.user_id },
          s('path', { class: 'pointer-arrow', d: 'M0 0L0 17L4.6 12.6L8 20L11 18.7L7.7 11.5L14 11.5Z' }),
          s('text', { class: 'pointer-name', x: 14, y: 26 }, p.name || ''));
        peersG.append(g);
      }
      g.style.setProperty('--peer', p.colour || '#64748b');
      g.setAttribute('transform', `translate(${pt.x},${pt.y})`);
    }
    for (const g of [...peersG.children]) if (!keep.has(g.dataset.session)) g.remove();
    paintPeers();
  }

  /** Components and connections others have selected: outlined in their colour. */
  function paintPeers() {
    for (const g of world.querySelectorAll('.peer-selected')) { g.classList.remove('peer-selected'); g.style.removeProperty('--peer'); }
    for (const p of st.peers) {
      const sel = p.selection;
      let g = null;
      if (sel?.type === 'component' && typeof sel.name === 'string') g = [...nodesG.children].find((x) => x.dataset.name === sel.name);
      else if (sel?.type === 'connection') g = [...edgesG.children].find((x) => x.dataset.from === sel.from && x.dataset.to === sel.to);
      if (g && !g.classList.contains('peer-selected')) { g.classList.add('peer-selected'); g.style.setProperty('--peer', p.colour || '#64748b'); }
    }
  }

  // ---------- start ----------
  draw(); drawPanel();
  requestAnimationFrame(fitView);
  validate();
  if (liveMode) startLive();
  else {
    if (layoutNeedsSave && !readOnly) { st.dirty = true; scheduleSave(); }
    // The REST autosave's status from the start (data-state "saved" too, not only the text).
    setStatus();
  }
  el.querySelector('.editor').dataset.ready = '1';
  return () => {
    document.removeEventListener('keydown', onKey);
    window.removeEventListener('beforeunload', beforeUnload);
    // Another editor's guard (opened since) stays.
    if (guard.leave === leave) guard.leave = null;
    clearTimeout(vTimer);
    closed = true;
    if (collab) { collab.close(); if (window.sdsimDebug) delete window.sdsimDebug.dropCollab; }
    if (dock) dock.destroy();
    if (st.dirty && !readOnly && !st.conflict) { clearTimeout(sTimer); save(); } else clearTimeout(sTimer);
  };
}
