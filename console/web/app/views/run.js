// The editor's run dock: start a run of the saved design, watch it window by window (charts,
// the canvas coloured by the editor through `onPaint`), pause, resume, change speed, stop,
// inject chaos, and read the results (bottlenecks, anomalies, forecasts, downloads,
// comparison with an earlier run); the project's run history, any run reopened with its charts.
import { api, ApiError } from '../api.js';
import { h, clear, toast, errorText, fmtDate, download, confirmDialog } from '../ui.js';
import { lineChart, fmt } from '../charts.js';
import { RunStream } from '../live.js';

const SPEEDS = [['1', '1x (real time)'], ['10', '10x'], ['100', '100x'], ['0', 'max']];
const LIVE = new Set(['queued', 'pending', 'starting', 'running', 'paused', 'stopping']);
const CHAOS = {
  crash: { label: 'Crash', fields: [['component', 'component'], ['replica', 'int?'], ['duration_s', 'num', 10]] },
  latency: { label: 'Add latency', fields: [['component', 'component'], ['extra_ms', 'num', 100], ['duration_s', 'num', 10]] },
  errors: { label: 'Errors', fields: [['component', 'component'], ['probability', 'num', 0.5], ['duration_s', 'num', 10]] },
  partition: { label: 'Partition', fields: [['from', 'component'], ['to', 'component'], ['duration_s', 'num', 10]] },
  traffic_spike: { label: 'Traffic spike', fields: [['source', 'client?'], ['multiplier', 'num', 3], ['duration_s', 'num', 10]] },
  cache_miss_storm: { label: 'Cache-miss storm', fields: [['component', 'cache'], ['hit_ratio', 'num', 0], ['duration_s', 'num', 10]] },
  random_crash: { label: 'Random crashes', fields: [['component', 'component'], ['mtbf_s', 'num', 20], ['mttr_s', 'num', 3]] },
};
const CACHE_KINDS = new Set(['redis', 'cdn']);
const COLORS = { a: '#2563eb', b: '#d97706', c: '#dc2626', d: '#7c3aed' };
const HIGHER_BETTER = new Set(['throughput', 'completions']);
/** Chaos and alert entries a run's timeline keeps. */
const MAX_EVENTS = 1000;
/** The report names the whole system "end to end"; the charts' scope for it is null. */
const scopeOf = (component) => (!component || component === 'end to end' ? null : component);

/** Who a chaos entry aims at, in words. */
export function chaosText(c) {
  const who = c.component || (c.from ? `${c.from} ↔ ${c.to}` : c.source || 'all clients');
  const what = { crash: 'crash', latency: `+${c.extra_ms} ms latency`, errors: `${Math.round((c.probability ?? 0) * 100)}% errors`, partition: 'partition', traffic_spike: `traffic ×${c.multiplier}`, cache_miss_storm: `cache hit ratio ${c.hit_ratio ?? 0}`, random_crash: `random crashes (MTBF ${c.mtbf_s} s)` }[c.type] || c.type;
  return `${what} · ${who}${c.duration_s ? ` for ${c.duration_s} s` : ''}`;
}

/**
 * The flow along each connection in a window (requests/s): the arrivals of its target,
 * shared among the connections into it by what each source sends.
 */
export function edgeFlows(design, byName, dt, e2e) {
  const comps = new Map((design.components || []).map((c) => [c.name, c]));
  const conns = design.connections || [];
  const outdeg = new Map();
  for (const e of conns) outdeg.set(e.from, (outdeg.get(e.from) || 0) + 1);
  const clients = [...comps.values()].filter((c) => c.kind === 'client').length || 1;
  const sends = (e) => {
    const src = byName.get(e.from);
    const c = comps.get(e.from);
    if (c?.kind === 'client') return (e2e?.arrivals || 0) / dt / clients;
    const thr = src ? src.throughput || 0 : 0;
    return e.probability !== undefined ? thr * e.probability : thr / (outdeg.get(e.from) || 1);
  };
  const into = new Map();
  conns.forEach((e, i) => { if (!into.has(e.to)) into.set(e.to, []); into.get(e.to).push(i); });
  const flows = new Map();
  for (const [to, idx] of into) {
    const t = byName.get(to);
    const arr = t ? (t.arrivals || 0) / dt : 0;
    const w = idx.map((i) => sends(conns[i]));
    const sum = w.reduce((a, b) => a + b, 0);
    idx.forEach((i, k) => flows.set(i, sum > 0 ? (arr * w[k]) / sum : arr / idx.length));
  }
  return flows;
}

// A run keeps every window for its charts (the scope can change at any time): compactly, one
// Float32Array of these fields per window, component after component (NaN for none).
const FIELDS = ['arrivals', 'completions', 'drops', 'errors', 'timeouts', 'utilisation', 'queue_length', 'mean_queue_length', 'throughput', 'p50_ms', 'p95_ms', 'p99_ms', 'replicas_up', 'mean_response_ms'];
const F = FIELDS.length;
const FI = Object.fromEntries(FIELDS.map((f, i) => [f, i]));

/** Windows stored compactly, with the names of their components. */
export class WindowStore {
  constructor() { this.names = []; this.index = new Map(); this.list = []; }
  get length() { return this.list.length; }
  last() { return this.list[this.list.length - 1]; }
  add(w) {
    const comps = w.components || [];
    for (const c of comps) if (!this.index.has(c.name)) { this.index.set(c.name, this.names.length); this.names.push(c.name); }
    const vals = new Float32Array(this.names.length * F).fill(NaN);
    for (const c of comps) {
      const o = this.index.get(c.name) * F;
      for (let k = 0; k < F; k++) { const v = c[FIELDS[k]]; if (v !== null && v !== undefined) vals[o + k] = v; }
    }
    this.list.push({ index: w.index, start_s: w.start_s, end_s: w.end_s, e2e: w.end_to_end || {}, vals });
  }
  /** One component's figures in window `w`, as an object (null when it has none). */
  comp(w, name) {
    const i = this.index.get(name);
    if (i === undefined || (i + 1) * F > w.vals.length) return null;
    const o = i * F; const out = {};
    for (let k = 0; k < F; k++) { const v = w.vals[o + k]; out[FIELDS[k]] = Number.isNaN(v) ? null : v; }
    return out;
  }
  byName(w) {
    const m = new Map();
    for (const n of this.names) { const c = this.comp(w, n); if (c) m.set(n, c); }
    return m;
  }
  /** The values the charts draw for window `w`: end to end (scope null) or one component. */
  point(w, scope) {
    const dt = (w.end_s - w.start_s) || 1;
    if (!scope) {
      const e = w.e2e;
      let busiest = 0;
      for (let o = FI.utilisation; o < w.vals.length; o += F) if (w.vals[o] > busiest) busiest = w.vals[o];
      return { t: w.end_s, arr: (e.arrivals || 0) / dt, thr: e.throughput, p50: e.p50_ms, p95: e.p95_ms, p99: e.p99_ms, err: (e.errors || 0) / dt, drop: (e.drops || 0) / dt, tmo: (e.timeouts || 0) / dt, util: busiest * 100, q: e.in_flight };
    }
    const c = this.comp(w, scope);
    if (!c) return { t: w.end_s };
    return { t: w.end_s, arr: (c.arrivals || 0) / dt, thr: c.throughput, p50: c.p50_ms, p95: c.p95_ms, p99: c.p99_ms, err: (c.errors || 0) / dt, drop: (c.drops || 0) / dt, tmo: (c.timeouts || 0) / dt, util: (c.utilisation || 0) * 100, q: c.queue_length, mq: c.mean_queue_length };
  }
}

/** A comparison of two reports in the shape of GET /api/simulations/compare (its fallback). */
export function compareReports(a, b) {
  const m = (x, y) => {
    const change = Number.isFinite(x) && Number.isFinite(y) ? y - x : null;
    const ratio = Number.isFinite(x) && Number.isFinite(y) && x !== 0 ? y / x : null;
    return { a: x ?? null, b: y ?? null, change, ratio };
  };
  const keys = ['throughput', 'mean_response_ms', 'p50_ms', 'p95_ms', 'p99_ms', 'errors', 'drops'];
  const e2e = {};
  for (const k of keys) e2e[k] = m(a.end_to_end?.[k], b.end_to_end?.[k]);
  const ca = new Map((a.components || []).map((c) => [c.name, c]));
  const cb = new Map((b.components || []).map((c) => [c.name, c]));
  const names = [...new Set([...ca.keys(), ...cb.keys()])];
  const components = names.map((n) => {
    const x = ca.get(n); const y = cb.get(n);
    const metrics = {};
    for (const k of ['utilisation', ...keys]) metrics[k] = m(x?.[k], y?.[k]);
    return { name: n, in: x && y ? 'both' : x ? 'a' : 'b', metrics };
  });
  const summary = [];
  const p99 = e2e.p99_ms;
  if (p99.ratio) summary.push(`End-to-end p99 ${p99.ratio > 1 ? 'rose' : 'fell'} from ${fmt(p99.a)} ms to ${fmt(p99.b)} ms (×${p99.ratio.toFixed(2)}).`);
  const thr = e2e.throughput;
  if (thr.ratio) summary.push(`Throughput went from ${fmt(thr.a)}/s to ${fmt(thr.b)}/s.`);
  if (e2e.errors.change) summary.push(`Errors: ${fmt(e2e.errors.a)} then ${fmt(e2e.errors.b)}.`);
  return { end_to_end: e2e, components, summary };
}

export function runDock({ project, components, design, beforeStart, onPaint, onScope, onToggle, initialRun }) {
  const st = {
    run: null, windows: new WindowStore(), stream: null, results: null, scope: null, ended: false,
    events: [], gaps: 0, conn: 'idle', poll: null, tab: 'live', raf: 0, fresh: 0, hoverT: null, toasted: new Map(),
  };
  const stats = { received: 0, painted: 0, latencies: [], paintLatencies: [], frameLatencies: [], work: [], frames: 0 };
  window.sdsimDebug = { ...(window.sdsimDebug || {}), dropLive: () => st.stream?.drop(), liveStats: () => ({ ...stats, latencies: [...stats.latencies], paintLatencies: [...stats.paintLatencies], frameLatencies: [...stats.frameLatencies], work: [...stats.work], reconnects: st.stream ? st.stream.reconnects : 0, gaps: st.gaps }) };

  // ---------- the frame ----------
  const el = h('section', { class: 'run-dock', id: 'run-dock', 'aria-label': 'Run', hidden: true });
  const speedSel = h('select', { id: 'run-speed', 'aria-label': 'Speed', onchange: () => changeSpeed() }, SPEEDS.map(([v, l]) => h('option', { value: v, selected: v === '10' }, l)));
  const seedInp = h('input', { id: 'run-seed', 'aria-label': 'Seed', placeholder: "the design's", inputmode: 'numeric', class: 'seed' });
  const startBtn = h('button', { type: 'button', class: 'primary', id: 'run-start', onclick: () => start() }, '▶ Run');
  const pauseBtn = h('button', { type: 'button', id: 'run-pause', onclick: () => control('pause'), disabled: true }, 'Pause');
  const resumeBtn = h('button', { type: 'button', id: 'run-resume', onclick: () => control('resume'), disabled: true }, 'Resume');
  const stopBtn = h('button', { type: 'button', id: 'run-stop', class: 'danger', onclick: () => stop(), disabled: true }, 'Stop');
  const statusEl = h('span', { class: 'run-status', id: 'run-status', role: 'status', 'aria-live': 'polite' }, 'No run yet');
  const progress = h('progress', { id: 'run-progress', max: 100, value: 0, 'aria-label': 'Progress' });
  const connEl = h('span', { class: 'run-conn', id: 'run-conn' });
  const tabBtns = {};
  const tabs = h('div', { class: 'tabs', role: 'tablist' }, [['live', 'Live'], ['results', 'Results'], ['history', 'History']].map(([k, l]) => {
    tabBtns[k] = h('button', { type: 'button', role: 'tab', id: `run-tab-${k}`, 'aria-controls': `run-${k}`, 'aria-selected': k === 'live' ? 'true' : 'false', onclick: () => showTab(k) }, l);
    return tabBtns[k];
  }));
  const closeBtn = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close the run panel', onclick: () => hide() }, '×');
  // The dock's height: drag its top edge, or focus it and use the arrow keys.
  const grip = h('div', { class: 'run-grip', role: 'separator', 'aria-orientation': 'horizontal', 'aria-label': 'Resize the run panel', tabindex: '0' });
  const setHeight = (px) => { const max = window.innerHeight - 160; el.style.height = `${Math.max(180, Math.min(max, px))}px`; onToggle?.(true); };
  grip.addEventListener('pointerdown', (e) => {
    const y0 = e.clientY; const h0 = el.getBoundingClientRect().height;
    grip.setPointerCapture(e.pointerId);
    const move = (ev) => { el.style.height = `${Math.max(180, Math.min(window.innerHeight - 160, h0 + y0 - ev.clientY))}px`; };
    const up = () => { grip.removeEventListener('pointermove', move); grip.removeEventListener('pointerup', up); onToggle?.(true); };
    grip.addEventListener('pointermove', move); grip.addEventListener('pointerup', up);
  });
  grip.addEventListener('keydown', (e) => {
    const d = { ArrowUp: 40, ArrowDown: -40 }[e.key];
    if (d) { e.preventDefault(); setHeight(el.getBoundingClientRect().height + d); }
  });
  el.append(grip);
  el.append(h('div', { class: 'run-bar' }, tabs,
    h('label', { class: 'inline' }, 'Speed ', speedSel), h('label', { class: 'inline' }, 'Seed ', seedInp),
    startBtn, pauseBtn, resumeBtn, stopBtn, progress, statusEl, connEl, h('span', { class: 'spacer' }), closeBtn));

  // live tab: chaos switches, the scope, the charts, the timeline
  const liveTab = h('div', { class: 'run-tab', id: 'run-live', role: 'tabpanel', 'aria-labelledby': 'run-tab-live' });
  const chaosType = h('select', { id: 'chaos-type', 'aria-label': 'Chaos', onchange: () => { chaosErr.textContent = ''; chaosFieldsDraw(); } }, Object.entries(CHAOS).map(([k, v]) => h('option', { value: k }, v.label)));
  const chaosFields = h('span', { class: 'chaos-fields' });
  const chaosBtn = h('button', { type: 'button', id: 'chaos-inject', onclick: () => inject(), disabled: true }, 'Inject');
  const chaosErr = h('small', { class: 'error', role: 'alert', id: 'chaos-error' });
  const scopeSel = h('select', { id: 'run-scope', 'aria-label': 'Charts of', onchange: () => setScope(scopeSel.value || null, true) });
  const chartDefs = [
    { id: 'chart-throughput', title: 'Throughput', unit: '/s', series: [{ key: 'thr', label: 'completed', color: COLORS.a }, { key: 'arr', label: 'arrived', color: '#94a3b8' }] },
    { id: 'chart-latency', title: 'Latency', unit: 'ms', series: [{ key: 'p50', label: 'p50', color: COLORS.a }, { key: 'p95', label: 'p95', color: COLORS.b }, { key: 'p99', label: 'p99', color: COLORS.c }] },
    { id: 'chart-errors', title: 'Errors and drops', unit: '/s', series: [{ key: 'err', label: 'errors', color: COLORS.c }, { key: 'drop', label: 'drops', color: COLORS.b }, { key: 'tmo', label: 'timeouts', color: COLORS.d }] },
    { id: 'chart-utilisation', title: 'Utilisation', unit: '%', series: [{ key: 'util', label: 'busy', color: COLORS.d }] },
    { id: 'chart-queue', title: 'Queue (end to end: in flight)', unit: '', series: [{ key: 'q', label: 'queue', color: COLORS.a }, { key: 'mq', label: 'mean', color: '#94a3b8' }] },
  ];
  const charts = chartDefs.map((d) => lineChart({ ...d, onHover: (t) => hover(t) }));
  const timeline = h('ol', { class: 'timeline', id: 'run-timeline', 'aria-label': 'Timeline' });
  const bottleneckLine = h('p', { class: 'small bottleneck-line', id: 'run-bottleneck-line' });
  liveTab.append(
    h('div', { class: 'chaos-bar', role: 'group', 'aria-label': 'Chaos' }, h('strong', {}, 'Chaos '), chaosType, chaosFields, chaosBtn, chaosErr),
    h('div', { class: 'charts-head' }, h('label', { class: 'inline' }, 'Charts of ', scopeSel), bottleneckLine),
    h('div', { class: 'charts' }, charts.map((c) => c.el)),
    h('details', { class: 'timeline-box', open: true }, h('summary', {}, 'Timeline: chaos and alerts'), timeline));
  const resultsTab = h('div', { class: 'run-tab', id: 'run-results', role: 'tabpanel', 'aria-labelledby': 'run-tab-results', hidden: true }, h('p', { class: 'muted' }, 'The results show here when a run ends.'));
  const historyTab = h('div', { class: 'run-tab', id: 'run-history', role: 'tabpanel', 'aria-labelledby': 'run-tab-history', hidden: true });
  el.append(liveTab, resultsTab, historyTab);

  function showTab(k) {
    st.tab = k;
    for (const [x, b] of Object.entries(tabBtns)) b.setAttribute('aria-selected', String(x === k));
    liveTab.hidden = k !== 'live'; resultsTab.hidden = k !== 'results'; historyTab.hidden = k !== 'history';
    if (k === 'live') for (const c of charts) c.render();
    if (k === 'history') loadHistory();
  }
  function show(tab) {
    const was = el.hidden;
    el.hidden = false; showTab(tab || st.tab); scopeOptions(); chaosFieldsDraw();
    if (was) {
      onToggle?.(true);
      if (st.windows.length) paintCanvas(st.windows.last());
      if (st.run) { const u = new URL(location.href); u.searchParams.set('run', st.run.id); history.replaceState(history.state, '', u.pathname + u.search); }
    }
  }
  function hide() {
    el.hidden = true; onPaint(null); onToggle?.(false);
    const u = new URL(location.href);
    if (u.searchParams.has('run')) { u.searchParams.delete('run'); history.replaceState(history.state, '', u.pathname + u.search); }
  }

  // ---------- scope and chaos forms ----------
  function names() { return components().map((c) => c.name); }
  function scopeOptions() {
    const cur = st.scope || '';
    clear(scopeSel);
    scopeSel.append(h('option', { value: '' }, 'End to end'), ...names().map((n) => h('option', { value: n, selected: n === cur }, n)));
    scopeSel.value = cur;
  }
  function setScope(name, fromDock = false) {
    if (name && !names().includes(name)) name = null;
    if (st.scope === name) return;
    st.scope = name;
    scopeSel.value = name || '';
    rebuildCharts();
    chaosFieldsDraw();
    if (fromDock) onScope?.(name);
  }
  function chaosFieldsDraw() {
    const def = CHAOS[chaosType.value];
    // Numbers typed for this kind of chaos stay when the fields are drawn again (a new
    // selection, a rename); the component lists follow the selection.
    const typed = chaosFields.dataset.type === chaosType.value
      ? Object.fromEntries([...chaosFields.querySelectorAll('input[data-chaos]')].map((x) => [x.dataset.chaos, x.value])) : {};
    chaosFields.dataset.type = chaosType.value;
    clear(chaosFields);
    const comps = components();
    for (const [key, type, dflt] of def.fields) {
      let inp;
      if (type === 'component' || type === 'cache' || type === 'client?') {
        let list = comps.filter((c) => c.kind !== 'client');
        if (type === 'cache') list = comps.filter((c) => CACHE_KINDS.has(c.kind));
        if (type === 'client?') list = comps.filter((c) => c.kind === 'client');
        inp = h('select', { 'data-chaos': key, 'aria-label': key.replace('_', ' ') },
          type === 'client?' ? h('option', { value: '' }, 'all clients') : null,
          list.map((c) => h('option', { value: c.name }, c.name)));
        const pref = key === 'to' ? null : st.scope;
        if (pref && list.some((c) => c.name === pref)) inp.value = pref;
        else if (key === 'to' && list.length > 1) inp.selectedIndex = 1;
      } else {
        inp = h('input', { 'data-chaos': key, 'aria-label': key.replace(/_/g, ' '), value: typed[key] ?? dflt ?? '', placeholder: dflt === undefined ? 'all' : '', inputmode: 'decimal', class: 'num' });
      }
      chaosFields.append(h('label', { class: 'inline' }, `${key.replace(/_s$/, ' (s)').replace(/_ms$/, ' (ms)').replace(/_/g, ' ')} `, inp));
    }
  }
  function chaosEntry() {
    const c = { type: chaosType.value };
    for (const x of chaosFields.querySelectorAll('[data-chaos]')) {
      const v = x.value.trim();
      if (v === '') continue;
      c[x.dataset.chaos] = x.tagName === 'SELECT' ? v : Number(v);
    }
    return c;
  }
  async function inject(entry) {
    if (!st.run || !isLive()) return;
    chaosErr.textContent = '';
    const c = entry || chaosEntry();
    try {
      const r = await api('POST', `/api/simulations/${st.run.id}/chaos`, c);
      st.run.chaos = [...(st.run.chaos || []), { at_s: r.at_s, chaos: r.chaos }];
      toast(`Chaos at ${fmt(r.at_s)} s: ${chaosText(r.chaos)}`, 'info', { ms: 3000 });
      refreshMarks(); drawTimeline();
    } catch (e) {
      chaosErr.textContent = errorText(e);
      if (!(e instanceof ApiError && e.status === 422)) toast(errorText(e), 'error');
    }
  }

  // ---------- starting and controlling ----------
  const isLive = () => st.run && !st.ended && LIVE.has(st.run.status);
  /** Flow moves on the canvas only while the run runs and the page hears it (not paused, not
   * over, not reconnecting). */
  const moving = () => !!(isLive() && st.run.status === 'running' && st.conn === 'live' && st.hoverT === null);
  function setControls() {
    const live = isLive();
    startBtn.disabled = live || Boolean(startBtn.dataset.busy);
    pauseBtn.disabled = !live || st.run.status === 'paused';
    resumeBtn.disabled = !live || st.run.status !== 'paused';
    stopBtn.disabled = !live;
    chaosBtn.disabled = !live;
    seedInp.disabled = live;
    el.dataset.status = st.run ? st.run.status : 'none';
    el.dataset.runId = st.run ? st.run.id : '';
    el.dataset.windows = String(st.windows.length);
    el.dataset.gaps = String(st.gaps);
    el.dataset.connection = st.conn;
    el.dataset.reconnects = String(st.stream ? st.stream.reconnects : 0);
    el.dataset.lastIndex = st.windows.length ? String(st.windows.last().index) : '';
    const r = st.run;
    if (!r) { statusEl.textContent = 'No run yet'; progress.value = 0; return; }
    const last = st.windows.last();
    const simulated = last ? last.end_s : (r.simulated_seconds || 0);
    const pct = r.duration_seconds ? Math.min(100, (simulated / r.duration_seconds) * 100) : r.progress || 0;
    progress.value = st.ended && r.status === 'completed' ? 100 : pct;
    statusEl.textContent = `${r.status} · ${fmt(simulated)} of ${fmt(r.duration_seconds)} simulated s · ${r.speed ? `${r.speed}x` : 'max speed'} · seed ${r.seed}`;
    connEl.textContent = { live: '● live', reconnecting: '◌ reconnecting…', connecting: '◌ connecting…', ended: '', failed: '✕ not connected', idle: '', unavailable: 'no live charts in this browser (no WebSocket): the status is re-read every second, the results come at the end' }[st.conn] || '';
    connEl.dataset.state = st.conn;
    if (st.moving !== moving() && st.windows.length && !el.hidden && st.hoverT === null) paintCanvas(st.windows.last());
  }

  async function start() {
    if (startBtn.dataset.busy) return;
    startBtn.dataset.busy = '1'; startBtn.disabled = true;
    try {
      const version = await beforeStart();
      const body = { project_id: project.id, speed: Number(speedSel.value) };
      if (version) body.version = version;
      const seed = seedInp.value.trim();
      if (seed && !/^\d{1,15}$/.test(seed)) { toast('The seed is a whole number (or empty: the design\'s own)', 'error'); return; }
      if (seed) body.seed = Number(seed);
      const r = await api('POST', '/api/simulations', body);
      if (!st.destroyed) open(r.simulation, { fresh: true });
    } catch (e) { toast(`Not started: ${errorText(e)}`, 'error'); } finally { delete startBtn.dataset.busy; setControls(); }
  }

  async function control(action) {
    if (!st.run) return;
    try {
      const r = await api('POST', `/api/simulations/${st.run.id}/${action}`);
      mergeRun(r.simulation);
    } catch (e) { toast(errorText(e), 'error'); }
  }
  async function changeSpeed() {
    if (!isLive()) return;
    try { const r = await api('PUT', `/api/simulations/${st.run.id}/speed`, { speed: Number(speedSel.value) }); mergeRun(r.simulation); } catch (e) { toast(errorText(e), 'error'); }
  }
  async function stop() {
    if (!st.run) return;
    try { await api('POST', `/api/simulations/${st.run.id}/stop`); st.run.status = 'stopping'; setControls(); } catch (e) { toast(errorText(e), 'error'); }
  }
  function mergeRun(r) {
    if (!st.run || r.id !== st.run.id) return;
    const hadChaos = (st.run.chaos || []).length;
    if (!st.ended || !LIVE.has(r.status)) st.run = { ...st.run, ...r };
    if ((r.chaos || []).length !== hadChaos) { refreshMarks(); drawTimeline(); }
    setControls();
  }

  /** Opens a run (a fresh one or one from the history): its windows from the first. */
  async function open(run, { fresh = false } = {}) {
    if (typeof run === 'string') {
      try { run = (await api('GET', `/api/simulations/${encodeURIComponent(run)}`)).simulation; } catch (e) { toast(`That run does not open: ${errorText(e)}`, 'error'); return; }
    }
    // Closed while the run was asked for: nothing to open it in.
    if (st.destroyed) return;
    reset();
    st.run = run; st.fresh = fresh;
    if (run.speed !== undefined) {
      // A pace the list lacks (started elsewhere): listed for this run.
      if (![...speedSel.options].some((o) => Number(o.value) === run.speed)) speedSel.append(h('option', { value: String(run.speed) }, `${run.speed}x`));
      speedSel.value = [...speedSel.options].find((o) => Number(o.value) === run.speed).value;
    }
    const u = new URL(location.href); u.searchParams.set('run', run.id); history.replaceState(history.state, '', u.pathname + u.search);
    show('live');
    setControls(); refreshMarks(); drawTimeline(); rebuildCharts();
    st.stream = new RunStream(run.id, {
      onWindow: (w) => onWindow(w),
      onEnd: (type, data) => onEnd(type, data),
      onState: (s, detail) => { st.conn = s; if (s === 'failed') toast(detail || 'The run\'s stream closed', 'error'); setControls(); },
    });
    // Without a stream (no WebSocket in this browser) the re-reads below are all the page
    // hears of the run: its status and progress, then its end and the results.
    const polled = (r) => { mergeRun(r); if (st.conn === 'unavailable' && !st.ended && st.run?.id === r.id && !LIVE.has(r.status)) onEnd(r.status, { status: r.status }); };
    clearInterval(st.poll);
    st.poll = setInterval(() => { if (isLive() && navigator.onLine) api('GET', `/api/simulations/${run.id}`).then((r) => polled(r.simulation)).catch(() => {}); }, st.conn === 'unavailable' ? 1000 : 3000);
    if (st.conn === 'unavailable' && !LIVE.has(run.status)) polled(run);
  }

  function reset() {
    st.stream?.close(); st.stream = null;
    clearInterval(st.poll);
    st.run = null; st.windows = new WindowStore(); st.results = null; st.ended = false; st.events = []; st.gaps = 0; st.conn = 'idle';
    stats.received = 0; stats.painted = 0; stats.latencies = []; stats.paintLatencies = []; stats.frameLatencies = []; stats.work = []; stats.frames = 0; st.pending = [];
    bottleneckLine.textContent = '';
    clear(resultsTab).append(h('p', { class: 'muted' }, 'The results show here when the run ends.'));
    for (const c of charts) { c.setPoints([]); c.setMarks([]); }
  }

  // ---------- windows ----------
  st.pending = [];
  function onWindow(w) {
    const prev = st.windows.last();
    if (prev ? w.index !== prev.index + 1 : w.index !== 0) st.gaps++;
    st.windows.add(w);
    stats.received++;
    st.pending.push(performance.now());
    for (const a of w.alerts || []) {
      // The timeline keeps the first MAX_EVENTS (the report's alert log is capped alike).
      if (st.events.length < MAX_EVENTS) st.events.push({ t: a.at_s, kind: 'alert', text: `alert “${a.rule}” ${a.state}${a.component ? ` on ${a.component}` : ''} (${fmt(a.value)})`, state: a.state });
      const key = `${a.rule}|${a.component}|${a.state}`;
      const now = performance.now();
      if (isLive() && st.fresh && !(st.toasted.get(key) > now - 3000) && st.toasted.set(key, now)) toast(`Alert “${a.rule}” ${a.state}${a.component ? ` on ${a.component}` : ''}: ${fmt(a.value)}`, a.state === 'firing' ? 'error' : 'ok', { ms: 4000 });
    }
    // Marks and timeline once per frame, not once per window.
    if ((w.alerts || []).length) st.marksStale = true;
    if (!st.raf) st.raf = requestAnimationFrame(paint);
  }

  function xMax() { return Math.max(st.run?.duration_seconds || 0, st.windows.length ? st.windows.last().end_s : 1); }

  function paint() {
    st.raf = 0;
    const began = performance.now();
    const arrived = st.pending;
    const added = arrived.length;
    st.pending = [];
    const store = st.windows; const ws = store.list;
    const max = xMax();
    const have = charts[0].data.length;
    const pts = have + added === ws.length ? ws.slice(have).map((w) => store.point(w, st.scope)) : null;
    for (const c of charts) {
      if (pts && c.data.length === have) for (const p of pts) c.push(p, max);
      else c.setData(ws.map((w) => store.point(w, st.scope)), max);
      if (!liveTab.hidden && !el.hidden) c.render(); // else when shown
    }
    if (st.marksStale) { st.marksStale = false; refreshMarks(); drawTimeline(); }
    if (st.hoverT === null && !el.hidden) paintCanvas(store.last());
    setControls();
    // Figures for the bench: from each window's arrival to the DOM holding it, and to the
    // start of the next frame (the one that shows it painted).
    const done = performance.now();
    for (const x of arrived) stats.latencies.push(done - x);
    stats.painted += added;
    stats.frames++;
    stats.work.push(done - began);
    // After this frame's rendering (style, layout, paint): a task posted from the frame's
    // callback runs once the frame is rendered. And the start of the next frame, an upper bound.
    const pl = stats.paintLatencies; const fl = stats.frameLatencies;
    if (added) {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => { const now = performance.now(); for (const x of arrived) pl.push(now - x); ch.port1.close(); };
      ch.port2.postMessage(0);
      requestAnimationFrame(() => { const now = performance.now(); for (const x of arrived) fl.push(now - x); });
    }
  }

  function rebuildCharts() {
    const pts = st.windows.list.map((w) => st.windows.point(w, st.scope));
    for (const c of charts) c.setData(pts.slice(), xMax());
    anomalyPoints(); refreshMarks();
    for (const c of charts) c.render();
  }

  function paintCanvas(w) {
    if (!w) { onPaint(null); return; }
    const byName = st.windows.byName(w);
    const dt = (w.end_s - w.start_s) || 1;
    st.moving = moving();
    onPaint({ byName, dt, e2e: w.e2e, flows: edgeFlows(design(), byName, dt, w.e2e), at: w.end_s, moving: st.moving });
  }
  function hover(t) {
    st.hoverT = t;
    if (t === null) { paintCanvas(st.windows.last()); return; }
    const w = st.windows.list.find((x) => x.end_s >= t);
    if (w) paintCanvas(w);
  }

  // ---------- marks and the timeline ----------
  function refreshMarks() {
    const marks = [];
    for (const x of st.run?.chaos || []) {
      const c = x.chaos || {};
      const mine = !st.scope || [c.component, c.from, c.to, c.source].includes(st.scope);
      marks.push({ t: x.at_s, t2: c.duration_s ? x.at_s + c.duration_s : undefined, label: `${fmt(x.at_s)} s: ${chaosText(c)}`, short: c.type === 'traffic_spike' ? 'spike' : c.type.replace(/_.*/, ''), color: mine ? '#b42318' : '#f97066', kind: 'chaos' });
    }
    for (const e of st.events) if (e.kind === 'alert') marks.push({ t: e.t, label: `${fmt(e.t)} s: ${e.text}`, short: e.state === 'firing' ? '⚑' : '✓', color: e.state === 'firing' ? '#b54708' : '#067647', kind: 'alert' });
    for (const c of charts) { c.setMarks(marks); c.render(); }
  }
  function drawTimeline() {
    clear(timeline);
    const items = [
      ...(st.run?.chaos || []).map((x) => ({ t: x.at_s, kind: 'chaos', text: chaosText(x.chaos || {}) })),
      ...st.events,
    ].sort((a, b) => a.t - b.t);
    if (!items.length) timeline.append(h('li', { class: 'muted' }, 'Nothing yet: chaos you inject and alerts that fire show here.'));
    for (const e of items) timeline.append(h('li', { class: `ev-${e.kind}`, 'data-kind': e.kind }, h('span', { class: 'at' }, `${fmt(e.t)} s`), ' ', e.kind === 'chaos' ? 'chaos: ' : '', e.text));
  }
  // Each anomaly's metric on the charts: the ring sits on that chart's series at its time
  // (the engine's queue_length series is a component's mean queue, or the requests in flight).
  const ANOMALY_CHART = { p50_ms: ['chart-latency', 'p50'], p95_ms: ['chart-latency', 'p95'], p99_ms: ['chart-latency', 'p99'], throughput: ['chart-throughput', 'thr'], queue_length: ['chart-queue', 'q'], utilisation: ['chart-utilisation', 'util'], error_rate: ['chart-errors', 'err'] };
  function anomalyPoints() {
    const list = st.results?.report?.analysis?.anomalies || [];
    for (const c of charts) {
      const id = c.el.dataset.chart;
      c.setPoints(list.filter((a) => scopeOf(a.component) === st.scope && ANOMALY_CHART[a.metric]?.[0] === id)
        .map((a) => ({ t: a.at_s, key: a.metric === 'queue_length' && st.scope ? 'mq' : ANOMALY_CHART[a.metric][1], fallback: a.metric === 'utilisation' ? a.value * 100 : a.value, label: `anomaly (${a.method}, score ${fmt(a.score)}) at ${fmt(a.at_s)} s: ${a.metric} = ${fmt(a.value)}` })));
    }
  }

  // ---------- the end and the results ----------
  async function onEnd(type, data) {
    const run = st.run;
    if (!run) return;
    st.ended = true;
    run.status = data.status || type;
    if (data.error) toast(`The run ${type}: ${data.error}`, 'error');
    if (!st.raf) paint();
    clearInterval(st.poll);
    let fresh = null;
    try { fresh = (await api('GET', `/api/simulations/${run.id}`)).simulation; } catch { /* keep what we have */ }
    // Another run opened (or the dock closed) meanwhile: this end is not on screen.
    if (st.destroyed || st.run !== run) return;
    if (fresh) st.run = fresh;
    setControls(); refreshMarks(); drawTimeline();
    if (st.run.status === 'completed' || st.run.status === 'stopped') await loadResults();
    if (st.fresh) toast(`Run ${st.run.status}${st.results ? ': results ready' : ''}`, st.run.status === 'completed' ? 'ok' : 'info', { ms: 3000 });
    if (st.tab === 'history') loadHistory();
  }

  async function loadResults() {
    const id = st.run.id;
    try { st.results = await api('GET', `/api/simulations/${id}/results`); } catch (e) {
      clear(resultsTab).append(h('p', { class: 'error' }, `No results: ${errorText(e)}`)); return;
    }
    if (!st.run || st.run.id !== id) return;
    const b = st.results.report?.analysis?.bottlenecks?.[0];
    bottleneckLine.textContent = b ? `${b.severity === 'info' ? '' : 'Bottleneck: '}${b.message}` : '';
    anomalyPoints(); for (const c of charts) c.render();
    drawResults();
  }

  function drawResults() {
    const r = st.results.report || {};
    const an = r.analysis || {};
    const e = r.end_to_end || {};
    clear(resultsTab);
    const dl = (pairs) => h('dl', { class: 'figures' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    resultsTab.append(h('div', { class: 'results-head' },
      h('h3', {}, `Results of the run of ${fmtDate(st.run.started_at)}`),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', id: 'download-json', onclick: () => download(`simulation-${st.run.id}.json`, JSON.stringify(st.results, null, 2)) }, 'Download JSON'),
      h('button', { type: 'button', id: 'download-csv', onclick: () => downloadCsv() }, 'Download CSV')));
    const cols = h('div', { class: 'results-cols' });
    // The engine keeps each list bounded and counts what it left out.
    const more = (list, what) => (an.omitted?.[list] > 0 ? h('p', { class: 'muted small', 'data-omitted': list }, `and ${fmt(an.omitted[list])} ${what} not listed`) : null);
    resultsTab.append(cols);
    cols.append(h('section', {}, h('h4', {}, 'End to end'), dl([
      ['Status', st.results.status], ['Simulated', `${fmt(r.simulated_s)} s`], ['Throughput', `${fmt(e.throughput)} /s`],
      ['Response p50 / p95 / p99', `${fmt(e.p50_ms)} / ${fmt(e.p95_ms)} / ${fmt(e.p99_ms)} ms`],
      ['Errors', fmt(e.errors)], ['Drops', fmt(e.drops)], ['Requests', fmt(e.arrivals)]])));
    cols.append(h('section', { class: 'bottlenecks', id: 'bottlenecks' }, h('h4', {}, 'What limits it, and what to change'),
      (an.bottlenecks || []).length ? h('ul', { class: 'plain' }, an.bottlenecks.map((b) => h('li', { class: `bottleneck sev-${b.severity}`, 'data-component': b.component },
        h('span', { class: `badge sev-${b.severity}` }, b.severity), ' ', h('span', { class: 'message' }, b.message),
        b.suggestion ? h('p', { class: 'suggestion' }, '→ ', b.suggestion) : null))) : h('p', { class: 'muted' }, 'No bottleneck found.'), more('bottlenecks', 'less pressed components')));
    const fc = an.forecasts || [];
    cols.append(h('section', { id: 'forecasts' }, h('h4', {}, 'Capacity forecasts'),
      fc.length ? h('table', { class: 'table' }, h('thead', {}, h('tr', {}, ['Component', 'Busy', 'Saturates at', 'Load ×', 'In'].map((x) => h('th', {}, x)))),
        h('tbody', {}, [...fc].sort((a, b) => (a.saturation_load_factor ?? 1e9) - (b.saturation_load_factor ?? 1e9)).map((f) => h('tr', {},
          h('td', {}, f.component), h('td', {}, `${fmt((f.utilisation || 0) * 100)}%`), h('td', {}, f.saturation_arrival_rate ? `${fmt(f.saturation_arrival_rate)} /s` : '–'),
          h('td', {}, f.saturation_load_factor ? `×${f.saturation_load_factor.toFixed(1)}` : '–'), h('td', {}, f.time_to_saturation_s != null ? `${fmt(f.time_to_saturation_s)} s` : '–'))))) : h('p', { class: 'muted' }, 'None.')));
    const anoms = an.anomalies || [];
    cols.append(h('section', { id: 'anomalies' }, h('h4', {}, `Anomalies (${anoms.length})`, h('small', { class: 'muted' }, ' marked on the charts')),
      anoms.length ? h('ul', { class: 'plain small' }, [...anoms].sort((x, y) => x.at_s - y.at_s).slice(0, 60).map((a) => h('li', {}, h('button', { type: 'button', class: 'link', class: 'anomaly-link', onclick: () => { setScope(scopeOf(a.component), true); showTab('live'); } }, `${fmt(a.at_s)} s · ${a.component || 'end to end'}`),
        ` ${a.metric} = ${fmt(a.value)} (${a.method}, score ${fmt(a.score)})`))) : an.omitted?.anomalies > 0 ? null : h('p', { class: 'muted' }, 'None.'), more('anomalies', 'anomalies')));
    const trends = an.trends || [];
    if (trends.length) cols.append(h('section', { id: 'trends' }, h('h4', {}, 'Trends'), h('ul', { class: 'plain small' }, trends.map((x) => h('li', {},
      `${x.component} · ${x.metric} ${x.direction} (${x.slope_per_s > 0 ? '+' : ''}${fmt(x.slope_per_s)} per s, r² ${x.r_squared.toFixed(2)})`))), more('trends', 'weaker trends')));
    const alerts = an.alerts || [];
    if (alerts.length) cols.append(h('section', {}, h('h4', {}, 'Alerts'), h('ul', { class: 'plain small' }, alerts.map((a) => h('li', {}, `${fmt(a.at_s)} s · “${a.rule}” ${a.state} (${fmt(a.value)})`))), more('alerts', 'later alert events')));
    resultsTab.append(h('section', {}, h('h4', {}, 'Components'), h('table', { class: 'table', id: 'components-table' },
      h('thead', {}, h('tr', {}, ['Component', 'Kind', 'Busy', 'Throughput', 'Mean', 'p99', 'Errors', 'Drops', 'Timeouts'].map((x) => h('th', {}, x)))),
      h('tbody', {}, (r.components || []).map((c) => h('tr', {}, h('td', {}, c.name), h('td', {}, c.kind), h('td', {}, `${fmt((c.utilisation || 0) * 100)}%`), h('td', {}, `${fmt(c.throughput)} /s`),
        h('td', {}, `${fmt(c.mean_response_ms)} ms`), h('td', {}, `${fmt(c.p99_ms)} ms`), h('td', {}, fmt(c.errors)), h('td', {}, fmt(c.drops)), h('td', {}, fmt(c.timeouts))))))));
    resultsTab.append(compareBox());
  }

  async function downloadCsv() {
    try {
      const text = await api('GET', `/api/simulations/${st.run.id}/results?format=csv`, undefined, { text: true });
      download(`simulation-${st.run.id}.csv`, text, 'text/csv');
    } catch (e) { toast(errorText(e), 'error'); }
  }

  // ---------- compare ----------
  function compareBox() {
    const box = h('section', { class: 'compare', id: 'compare' }, h('h4', {}, 'Compare with another run'));
    const sel = h('select', { id: 'compare-with', 'aria-label': 'Compare with' }, h('option', { value: '' }, 'loading…'));
    const out = h('div', { id: 'compare-result' });
    box.append(h('div', { class: 'toolbar' }, sel, h('button', { type: 'button', id: 'compare-go', onclick: () => sel.value && compare(sel.value, out) }, 'Compare')), out);
    api('GET', `/api/simulations?project_id=${encodeURIComponent(project.id)}&page_size=50`).then((r) => {
      clear(sel);
      const others = r.simulations.filter((x) => x.id !== st.run.id && ['completed', 'stopped'].includes(x.status));
      if (!others.length) sel.append(h('option', { value: '' }, 'no other finished run of this project'));
      for (const x of others) sel.append(h('option', { value: x.id }, `${fmtDate(x.started_at || x.created_at)} · seed ${x.seed} · ${x.status}`));
    }).catch(() => { clear(sel); sel.append(h('option', { value: '' }, 'the history did not load')); });
    return box;
  }

  async function compare(otherId, out) {
    clear(out).append(h('p', { class: 'loading' }, 'Comparing…'));
    // a: the other run, b: this one.
    let cmp; let local = false;
    try {
      cmp = await api('GET', `/api/simulations/compare?a=${encodeURIComponent(otherId)}&b=${encodeURIComponent(st.run.id)}`);
    } catch (e) {
      if (!(e instanceof ApiError && (e.status === 404 || e.status === 405))) { clear(out).append(h('p', { class: 'error' }, errorText(e))); return; }
      try {
        const other = await api('GET', `/api/simulations/${otherId}/results`);
        cmp = compareReports(other.report, st.results.report); local = true;
      } catch (e2) { clear(out).append(h('p', { class: 'error' }, errorText(e2))); return; }
    }
    clear(out);
    out.dataset.source = local ? 'page' : 'server';
    if ((cmp.summary || []).length) out.append(h('ul', { class: 'compare-summary' }, cmp.summary.map((x) => h('li', {}, x))));
    const row = (name, m, lowerBetter = true) => {
      const cls = m.change === null || m.change === 0 ? '' : (m.change > 0) === lowerBetter ? 'worse' : 'better';
      return h('tr', { class: cls }, h('td', {}, name), h('td', {}, fmt(m.a)), h('td', {}, fmt(m.b)),
        h('td', {}, m.change === null ? '–' : `${m.change > 0 ? '+' : ''}${fmt(m.change)}`), h('td', {}, m.ratio ? `×${m.ratio.toFixed(2)}` : '–'));
    };
    out.append(h('table', { class: 'table compare-table' }, h('thead', {}, h('tr', {}, ['End to end', 'other run', 'this run', 'change', 'ratio'].map((x) => h('th', {}, x)))),
      h('tbody', {}, Object.entries(cmp.end_to_end || {}).map(([k, m]) => row(k, m, !HIGHER_BETTER.has(k))))));
    const comps = (cmp.components || []).filter((c) => c.in !== 'both' || Object.values(c.metrics || {}).some((m) => m.ratio && Math.abs(m.ratio - 1) > 0.05));
    if (comps.length) {
      out.append(h('table', { class: 'table compare-table' }, h('thead', {}, h('tr', {}, ['Component', 'other run', 'this run', 'change', 'ratio'].map((x) => h('th', {}, x)))),
        h('tbody', {}, comps.map((c) => c.in !== 'both'
          ? h('tr', {}, h('td', {}, c.name), h('td', { colspan: 4 }, c.in === 'a' ? 'only in the other run' : 'only in this run'))
          : Object.entries(c.metrics).filter(([, m]) => m.ratio && Math.abs(m.ratio - 1) > 0.05).map(([k, m]) => row(`${c.name} · ${k}`, m, !HIGHER_BETTER.has(k)))))));
    }
    if (local) out.append(h('p', { class: 'muted small' }, 'Compared in the page (this server has no comparison route).'));
  }

  // ---------- history ----------
  const runsPage = (token) => api('GET', `/api/simulations?project_id=${encodeURIComponent(project.id)}&page_size=50${token ? `&page_token=${encodeURIComponent(token)}` : ''}`);
  function runRow(x) {
    return h('tr', { 'data-run': x.id, class: st.run?.id === x.id ? 'current' : '' },
      h('td', {}, fmtDate(x.started_at || x.created_at)), h('td', {}, h('span', { class: `badge st-${x.status}` }, x.status)),
      h('td', {}, x.speed ? `${x.speed}x` : 'max'), h('td', {}, String(x.seed)), h('td', {}, `${x.duration_seconds} s`),
      h('td', { class: 'row-actions' },
        h('button', { type: 'button', class: 'link', onclick: () => open(x.id) }, st.run?.id === x.id ? 'Reopen' : 'Open'),
        h('button', { type: 'button', class: 'link', onclick: () => replay(x.id) }, 'Replay'),
        LIVE.has(x.status) ? null : h('button', { type: 'button', class: 'link danger', onclick: () => del(x.id) }, 'Delete')));
  }
  async function loadHistory() {
    clear(historyTab).append(h('p', { class: 'loading' }, 'Loading the runs…'));
    let r;
    try { r = await runsPage(); } catch (e) { clear(historyTab).append(h('p', { class: 'error' }, errorText(e))); return; }
    clear(historyTab);
    if (!r.simulations.length) { historyTab.append(h('p', { class: 'empty' }, 'No runs of this project yet.')); return; }
    const body = h('tbody', {}, r.simulations.map(runRow));
    historyTab.append(h('table', { class: 'table runs', id: 'runs' },
      h('thead', {}, h('tr', {}, ['Started', 'Status', 'Speed', 'Seed', 'Simulated', ''].map((x) => h('th', {}, x)))), body));
    let next = r.next_page_token;
    const more = h('button', { type: 'button', id: 'runs-more', hidden: !next, onclick: async () => {
      more.disabled = true;
      try { const p = await runsPage(next); body.append(...p.simulations.map(runRow)); next = p.next_page_token; } catch (e) { toast(errorText(e), 'error'); }
      more.disabled = false; more.hidden = !next;
    } }, 'More runs');
    historyTab.append(more);
  }
  async function replay(id) {
    try { const r = await api('POST', '/api/simulations', { replay_of: id, speed: Number(speedSel.value) }); open(r.simulation, { fresh: true }); } catch (e) { toast(errorText(e), 'error'); }
  }
  async function del(id) {
    if (!(await confirmDialog('Delete the run', 'Delete this run and its results?', 'Delete'))) return;
    try {
      await api('DELETE', `/api/simulations/${id}`);
      if (st.run?.id === id) {
        reset(); setControls(); onPaint(null);
        const u = new URL(location.href); u.searchParams.delete('run'); history.replaceState(history.state, '', u.pathname + u.search);
      }
      loadHistory();
    } catch (e) { toast(errorText(e), 'error'); }
  }

  // ---------- start ----------
  drawTimeline(); setControls();
  if (initialRun) open(initialRun);
  return {
    el,
    show, hide,
    setScope: (n) => setScope(n),
    /** The design's components changed (added, renamed, removed, another kind). */
    refreshNames: () => {
      const sig = components().map((c) => `${c.name}\u0000${c.kind}`).join('\u0001');
      if (sig === st.namesSig) return;
      st.namesSig = sig;
      if (st.scope && !names().includes(st.scope)) setScope(null);
      scopeOptions(); chaosFieldsDraw();
    },
    get visible() { return !el.hidden; },
    destroy() { st.destroyed = true; reset(); cancelAnimationFrame(st.raf); if (window.sdsimDebug) { delete window.sdsimDebug.dropLive; delete window.sdsimDebug.liveStats; } },
  };
}
