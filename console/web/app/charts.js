// Small line charts of a run's windows: the page's own SVG (no library), x = simulated
// seconds. Marks (chaos, alerts) are shaded spans or lines across the plot, points (anomalies)
// are rings on a series. Everything is drawn with presentation attributes, not CSS, so a chart
// serialised as it is makes a standalone SVG file, and a PNG through a canvas.
import { s, h, clear, download } from './ui.js';

const W = 320; const H = 132;
const PAD = { l: 40, r: 8, t: 8, b: 18 };
const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, sans-serif';

/** A tidy upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten. */
export function niceMax(v) {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/** 1234 as 1.2k, 45.0 as 45, 0.5 as 0.5; a unit after it. */
export function fmt(v, unit = '') {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  let t;
  if (a >= 1e6) t = `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  else if (a >= 1e3) t = `${(v / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  else if (a >= 100 || a === 0) t = v.toFixed(0);
  else if (a >= 10) t = v.toFixed(1);
  else t = v.toFixed(a >= 1 ? 2 : 3).replace(/\.?0+$/, '') || '0';
  t = t.replace(/\.0(?=[kM]?$)/, '');
  return unit ? `${t}${unit === '%' ? '' : ' '}${unit}` : t;
}

/**
 * A chart: `series` [{key, label, color}]; `unit` for the axis and values. Returns
 * {el, setData(points, xMax), setMarks(marks), setPoints(points), render(), svgText(), png()}.
 * points: [{t, <key>: number|null}] in time order; marks: [{t, t2?, label, color}];
 * anomaly points: [{t, key, v, label}].
 */
export function lineChart({ id, title, unit = '', series, onHover }) {
  let data = []; let xMax = 1; let marks = []; let spots = []; let dirty = true; let marksDirty = true; let spotsDirty = true;
  // Each series' largest value so far (null: to count again).
  let tops = null;
  const grow = (p) => { for (const x of series) { const v = p[x.key]; if (Number.isFinite(v) && v > tops[x.key]) tops[x.key] = v; } };
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': title, 'font-family': FONT });
  const grid = s('g', {}); const marksG = s('g', {}); const lines = s('g', {}); const spotsG = s('g', {}); const cursor = s('line', { y1: PAD.t, y2: H - PAD.b, stroke: '#94a3b8', 'stroke-width': 1, visibility: 'hidden' });
  const paths = series.map((x) => s('path', { d: '', fill: 'none', stroke: x.color, 'stroke-width': 1.6, 'stroke-linejoin': 'round', 'stroke-linecap': 'round', 'data-series': x.key }));
  lines.append(...paths);
  svg.append(s('rect', { x: 0, y: 0, width: W, height: H, fill: '#ffffff' }), grid, marksG, lines, spotsG, cursor);
  const latest = h('span', { class: 'chart-latest' });
  const legend = h('span', { class: 'chart-legend' }, series.map((x) => h('span', {}, h('i', { style: `background:${x.color}` }), x.label)));
  const el = h('figure', { class: 'chart', id, 'data-chart': id, 'data-points': '0' },
    h('figcaption', {}, h('strong', {}, title), legend, latest,
      h('span', { class: 'chart-actions' },
        h('button', { type: 'button', class: 'link', 'aria-label': `${title} as SVG`, onclick: () => download(`${id}.svg`, svgText(), 'image/svg+xml') }, 'SVG'),
        h('button', { type: 'button', class: 'link', 'aria-label': `${title} as PNG`, onclick: () => png().then((b) => downloadBlob(`${id}.png`, b)) }, 'PNG'))),
    svg);

  const sx = (t) => PAD.l + (t / xMax) * (W - PAD.l - PAD.r);
  let yMax = 1;
  const sy = (v) => H - PAD.b - (v / yMax) * (H - PAD.t - PAD.b);

  function drawAxes(axes) {
    clear(grid);
    grid.dataset.axes = axes;
    for (const f of [0, 0.5, 1]) {
      const y = sy(yMax * f);
      grid.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, stroke: f ? '#e5e7eb' : '#9ca3af', 'stroke-width': 1 }),
        s('text', { x: PAD.l - 4, y: y + 3, 'text-anchor': 'end', 'font-size': 9, fill: '#6b7280' }, fmt(yMax * f)));
    }
    for (const f of [0, 0.5, 1]) {
      const t = xMax * f;
      grid.append(s('text', { x: sx(t), y: H - 5, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle', 'font-size': 9, fill: '#6b7280' }, `${fmt(t)} s`));
    }
  }

  function render() {
    if (!dirty) return;
    dirty = false;
    if (!tops) { tops = {}; for (const x of series) tops[x.key] = 0; for (const p of data) grow(p); }
    const top = Math.max(0, ...Object.values(tops));
    // A point without a value sits on its series at its time.
    const at = (a) => { if (Number.isFinite(a.v)) return a.v; const p = data.find((q) => Math.abs(q.t - a.t) < 1e-6); return p && Number.isFinite(p[a.key]) ? p[a.key] : a.fallback; };
    yMax = unit === '%' ? Math.max(100, niceMax(top)) : niceMax(top * 1.05);
    // The axes change only with their bounds.
    const axes = `${yMax}|${xMax}`;
    const moved = grid.dataset.axes !== axes;
    if (moved) drawAxes(axes);
    // Past two points per pixel column, keep each column's first, min and max (the shape).
    const cols = (W - PAD.l - PAD.r) * 2;
    series.forEach((x, i) => {
      let d = ''; let pen = false; let run = 0;
      const lift = () => { if (run === 1) d += 'h0.5'; run = 0; pen = false; };
      const step = data.length > cols ? data.length / cols : 1;
      for (let j = 0; j < data.length; j += step) {
        const lo = Math.floor(j); const hi = Math.min(data.length, Math.floor(j + step));
        let pick = [lo];
        if (hi - lo > 1) {
          let mn = lo; let mx = lo;
          for (let k = lo; k < hi; k++) { const v = data[k][x.key]; if (v < data[mn][x.key]) mn = k; if (v > data[mx][x.key]) mx = k; }
          pick = [...new Set([lo, mn, mx])].sort((a, b) => a - b);
        }
        for (const k of pick) {
          const p = data[k]; const v = p[x.key];
          if (v === null || v === undefined || !Number.isFinite(v)) { lift(); continue; }
          d += `${pen ? 'L' : 'M'}${sx(p.t).toFixed(1)} ${sy(v).toFixed(1)}`;
          pen = true; run++;
        }
      }
      lift();
      paths[i].setAttribute('d', d);
    });
    if (moved || marksDirty) drawMarks();
    if (moved || spotsDirty) drawSpots(at);
    marksDirty = false; spotsDirty = false;
    el.dataset.points = String(data.length);
    el.dataset.max = JSON.stringify(tops);
    const last = data[data.length - 1];
    latest.textContent = last ? series.map((x) => fmt(last[x.key], unit)).join(' / ') : '';
  }

  function drawMarks() {
    clear(marksG);
    for (const m of marks) {
      const x1 = sx(Math.min(m.t, xMax));
      if (m.t2 !== undefined && m.t2 > m.t) {
        marksG.append(s('rect', { x: x1, y: PAD.t, width: Math.max(1, sx(Math.min(m.t2, xMax)) - x1), height: H - PAD.t - PAD.b, fill: m.color, 'fill-opacity': 0.12, class: `mark mark-${m.kind || 'x'}` }));
      }
      marksG.append(s('line', { x1, x2: x1, y1: PAD.t, y2: H - PAD.b, stroke: m.color, 'stroke-width': 1.2, 'stroke-dasharray': '3 2', class: `mark mark-${m.kind || 'x'}`, 'data-at': m.t }, s('title', {}, m.label)));
      marksG.append(s('text', { x: x1 + 2, y: PAD.t + 8, 'font-size': 8, fill: m.color }, m.short || ''));
    }
  }

  function drawSpots(at) {
    clear(spotsG);
    for (const a of spots) {
      const x = series.find((q) => q.key === a.key);
      const v = at(a);
      if (!x || !Number.isFinite(v)) continue;
      spotsG.append(s('circle', { cx: sx(a.t), cy: Math.max(PAD.t, sy(v)), r: 4, fill: 'none', stroke: '#b42318', 'stroke-width': 1.6, class: 'anomaly' }, s('title', {}, a.label)));
    }
  }

  svg.addEventListener('pointermove', (e) => {
    if (!data.length) return;
    const r = svg.getBoundingClientRect();
    const px = ((e.clientX - r.left) / r.width) * W;
    const t = ((px - PAD.l) / (W - PAD.l - PAD.r)) * xMax;
    cursor.setAttribute('x1', px); cursor.setAttribute('x2', px); cursor.setAttribute('visibility', 'visible');
    let k = 0;
    for (let i = 0; i < data.length; i++) if (data[i].t <= t) k = i; else break;
    const p = data[k];
    latest.textContent = `at ${fmt(p.t)} s: ${series.map((x) => fmt(p[x.key], unit)).join(' / ')}`;
    if (onHover) onHover(p.t);
  });
  svg.addEventListener('pointerleave', () => { cursor.setAttribute('visibility', 'hidden'); dirty = true; render(); if (onHover) onHover(null); });

  /** The chart as a standalone SVG file: a header with its title and legend above the plot. */
  function svgText() {
    render();
    const HEAD = 22;
    const head = unit ? `${title} (${unit})` : title;
    const out = s('svg', { viewBox: `0 0 ${W} ${H + HEAD}`, width: W * 2, height: (H + HEAD) * 2, 'font-family': FONT });
    out.append(s('title', {}, title), s('rect', { x: 0, y: 0, width: W, height: H + HEAD, fill: '#ffffff' }),
      s('text', { x: 6, y: 14, 'font-size': 11, 'font-weight': 700, fill: '#1b1f24' }, head));
    let x = 16 + head.length * 6.6;
    for (const q of series) {
      out.append(s('line', { x1: x, x2: x + 10, y1: 10, y2: 10, stroke: q.color, 'stroke-width': 2 }),
        s('text', { x: x + 13, y: 13, 'font-size': 9, fill: '#5b6470' }, q.label));
      x += 20 + q.label.length * 5.2;
    }
    const plot = s('g', { transform: `translate(0,${HEAD})` });
    for (const n of svg.childNodes) if (n !== cursor) plot.append(n.cloneNode(true));
    out.append(plot);
    return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(out)}`;
  }

  function png(scale = 3) {
    const url = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svgText())}`;
    const HH = H + 22;
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => {
        const cv = document.createElement('canvas');
        cv.width = W * scale; cv.height = HH * scale;
        cv.getContext('2d').drawImage(img, 0, 0, cv.width, cv.height);
        cv.toBlob((b) => (b ? resolve(b) : reject(new Error('no PNG'))), 'image/png');
      };
      img.onerror = () => reject(new Error('the chart did not draw'));
      img.src = url;
    });
  }

  return {
    el,
    setData(points, max) { data = points; tops = null; xMax = Math.max(1e-9, max || 1); dirty = true; spotsDirty = true; },
    push(p, max) { data.push(p); if (tops) grow(p); if (max) xMax = max; dirty = true; },
    setMarks(m) { marks = m; dirty = true; marksDirty = true; },
    setPoints(p) { spots = p; dirty = true; spotsDirty = true; },
    render, svgText, png,
    get data() { return data; },
  };
}

export function downloadBlob(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
