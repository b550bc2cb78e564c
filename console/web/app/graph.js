// Layout helpers shared by the editor and the previews: a layered placement for designs that
// come without positions, and a small read-only drawing of a design.
import { s } from './ui.js';
import { iconSvgPath } from './catalogue.js';

export const NODE_W = 150;
export const NODE_H = 56;

/** Positions {name: {x, y}} in columns by distance from the clients. */
export function autoLayout(design, known = {}) {
  const comps = design.components || [];
  const names = comps.map((c) => c.name);
  const out = new Map(names.map((n) => [n, []]));
  for (const c of design.connections || []) if (out.has(c.from) && out.has(c.to)) out.get(c.from).push(c.to);
  const depth = new Map();
  const queue = comps.filter((c) => c.kind === 'client').map((c) => c.name);
  if (!queue.length && names.length) queue.push(names[0]);
  for (const n of queue) depth.set(n, 0);
  while (queue.length) {
    const n = queue.shift();
    for (const m of out.get(n) || []) if (!depth.has(m)) { depth.set(m, depth.get(n) + 1); queue.push(m); }
  }
  let maxD = Math.max(0, ...depth.values());
  for (const n of names) if (!depth.has(n)) depth.set(n, ++maxD);
  const perCol = new Map();
  const pos = {};
  for (const n of names) {
    if (known[n]) { pos[n] = known[n]; continue; }
    const d = depth.get(n);
    const row = perCol.get(d) || 0;
    perCol.set(d, row + 1);
    pos[n] = { x: 40 + d * (NODE_W + 70), y: 40 + row * (NODE_H + 40) };
  }
  return pos;
}

/** A small SVG picture of a design (templates' previews). */
export function miniature(design, width = 320, height = 180) {
  const pos = autoLayout(design);
  const xs = Object.values(pos);
  const maxX = Math.max(...xs.map((p) => p.x + NODE_W), 100);
  const maxY = Math.max(...xs.map((p) => p.y + NODE_H), 60);
  const svg = s('svg', { viewBox: `0 0 ${maxX + 40} ${maxY + 40}`, width, height, class: 'mini', role: 'img', 'aria-label': `Diagram of ${design.name || 'the design'}` });
  for (const c of design.connections || []) {
    const a = pos[c.from]; const b = pos[c.to];
    if (!a || !b) continue;
    svg.append(s('line', { x1: a.x + NODE_W, y1: a.y + NODE_H / 2, x2: b.x, y2: b.y + NODE_H / 2, class: 'mini-edge' }));
  }
  for (const c of design.components || []) {
    const p = pos[c.name];
    const g = s('g', { transform: `translate(${p.x},${p.y})` });
    g.append(s('rect', { width: NODE_W, height: NODE_H, rx: 8, class: `mini-node kind-${c.kind}` }));
    g.append(s('path', { d: iconSvgPath(c.kind), transform: 'translate(10,16)', class: 'icon' }));
    g.append(s('text', { x: 42, y: 34, class: 'mini-label' }, c.name.length > 14 ? `${c.name.slice(0, 13)}…` : c.name));
    svg.append(g);
  }
  return svg;
}

function positionsOf(design, layout) {
  const ids = (layout && layout.ids) || {};
  const stored = (layout && layout.positions) || {};
  const known = {};
  for (const c of design.components || []) if (ids[c.name] && stored[ids[c.name]]) known[c.name] = stored[ids[c.name]];
  return autoLayout(design, known);
}

/**
 * The newer version drawn with its changes marked: added in green, renamed in blue (with the
 * old name), changed in amber, and the removed components as dashed ghosts where they were.
 */
export function miniatureDiff(older, newer, d) {
  const nd = newer.design || {}; const od = older.design || {};
  const np = positionsOf(nd, newer.layout); const op = positionsOf(od, older.layout);
  const mark = new Map();
  for (const n of d.components.added) mark.set(n, ['added', '']);
  for (const c of d.components.changed) mark.set(c.name, ['changed', '']);
  for (const r of d.components.renamed) mark.set(r.to, ['renamed', `was ${r.from}`]);
  const ghosts = (od.components || []).filter((c) => d.components.removed.includes(c.name)).map((c) => ({ ...c, p: op[c.name] }));
  const all = [...Object.values(np), ...ghosts.map((g) => g.p)].filter(Boolean);
  const maxX = Math.max(...all.map((p) => p.x + NODE_W), 100) + 40;
  const maxY = Math.max(...all.map((p) => p.y + NODE_H), 60) + 40;
  const minX = Math.min(...all.map((p) => p.x), 0) - 20; const minY = Math.min(...all.map((p) => p.y), 0) - 20;
  const svg = s('svg', { viewBox: `${minX} ${minY} ${maxX - minX} ${maxY - minY}`, class: 'mini diff-mini', role: 'img', 'aria-label': 'The newer version with its changes marked' });
  const added = new Set(d.connections.added.map((e) => `${e.from}\u0000${e.to}`));
  for (const c of nd.connections || []) {
    const a = np[c.from]; const b = np[c.to];
    if (!a || !b) continue;
    svg.append(s('line', { x1: a.x + NODE_W, y1: a.y + NODE_H / 2, x2: b.x, y2: b.y + NODE_H / 2, class: `mini-edge${added.has(`${c.from}\u0000${c.to}`) ? ' edge-added' : ''}` }));
  }
  const node = (c, p, cls, note) => {
    const g = s('g', { transform: `translate(${p.x},${p.y})`, class: `mini-g ${cls}` });
    g.append(s('rect', { width: NODE_W, height: NODE_H, rx: 8, class: `mini-node kind-${c.kind}` }));
    g.append(s('path', { d: iconSvgPath(c.kind), transform: 'translate(10,16)', class: 'icon' }));
    g.append(s('text', { x: 42, y: note ? 26 : 34, class: 'mini-label' }, c.name.length > 14 ? `${c.name.slice(0, 13)}…` : c.name));
    if (note) g.append(s('text', { x: 42, y: 44, class: 'mini-note' }, note.length > 18 ? `${note.slice(0, 17)}…` : note));
    svg.append(g);
  };
  for (const c of nd.components || []) { const [cls, note] = mark.get(c.name) || ['same', '']; node(c, np[c.name], `d-${cls}`, note); }
  for (const g of ghosts) if (g.p) node(g, g.p, 'd-removed', 'removed');
  return svg;
}
