// What changed between two versions of a design: the same structure and rules as the
// project service's diff (actors/project/src/diff.rs), so the page can describe unsaved
// changes too; and its rendering, where a rename reads as a rename.
import { h } from './ui.js';

const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const byName = (d) => new Map((d && Array.isArray(d.components) ? d.components : []).filter((c) => c && typeof c.name === 'string').map((c) => [c.name, c]));
const idsOf = (l) => (l && l.ids && typeof l.ids === 'object' ? l.ids : {});

function changedKeys(a, b, skip) {
  const keys = [...new Set([...Object.keys(a || {}), ...Object.keys(b || {})])].sort();
  return keys.filter((k) => !skip.includes(k) && !eq(a?.[k], b?.[k]));
}

export function diffDesigns(oldD, oldL, newD, newL) {
  const d = { fields: [], components: { added: [], removed: [], renamed: [], changed: [] }, connections: { added: [], removed: [], changed: [] } };
  for (const f of changedKeys(oldD || {}, newD || {}, ['components', 'connections'])) d.fields.push({ field: f, from: oldD?.[f] ?? null, to: newD?.[f] ?? null });
  const oc = byName(oldD); const nc = byName(newD);
  const oid = idsOf(oldL); const nid = idsOf(newL);
  const oldById = new Map(Object.entries(oid).filter(([n]) => oc.has(n)).map(([n, id]) => [id, n]));
  const matched = new Map();
  for (const name of [...nc.keys()].sort()) {
    const old = nid[name] !== undefined ? oldById.get(nid[name]) : undefined;
    if (old !== undefined) {
      if (old !== name) d.components.renamed.push({ id: nid[name], from: old, to: name });
      matched.set(old, name);
    } else if (oc.has(name) && (oid[name] === undefined || nid[name] === oid[name]) && !matched.has(name)) {
      matched.set(name, name);
    }
  }
  const newMatched = new Set(matched.values());
  d.components.added = [...nc.keys()].sort().filter((n) => !newMatched.has(n));
  d.components.removed = [...oc.keys()].sort().filter((n) => !matched.has(n));
  for (const [o, n] of [...matched.entries()].sort()) {
    const fields = changedKeys(oc.get(o), nc.get(n), ['name']);
    if (fields.length) d.components.changed.push({ name: n, fields });
  }
  const edges = (des, ren) => {
    const m = new Map();
    for (const c of (des && Array.isArray(des.connections) ? des.connections : [])) {
      if (!c || typeof c.from !== 'string' || typeof c.to !== 'string') continue;
      const from = ren.get(c.from) ?? c.from; const to = ren.get(c.to) ?? c.to;
      m.set(`${from}\u0000${to}`, { from, to, obj: c });
    }
    return m;
  };
  const oe = edges(oldD, matched); const ne = edges(newD, new Map());
  for (const [k, e] of ne) if (!oe.has(k)) d.connections.added.push({ from: e.from, to: e.to });
  for (const [k, e] of oe) if (!ne.has(k)) d.connections.removed.push({ from: e.from, to: e.to });
  for (const [k, e] of ne) {
    const o = oe.get(k);
    if (!o) continue;
    const fields = changedKeys(o.obj, e.obj, ['from', 'to']);
    if (fields.length) d.connections.changed.push({ from: e.from, to: e.to, fields });
  }
  return d;
}

export function isEmptyDiff(d) {
  return !d.fields.length && !d.components.added.length && !d.components.removed.length && !d.components.renamed.length
    && !d.components.changed.length && !d.connections.added.length && !d.connections.removed.length && !d.connections.changed.length;
}

const short = (v) => { const t = JSON.stringify(v); return t === undefined ? '—' : t.length > 60 ? `${t.slice(0, 57)}…` : t; };

/** A list a person reads: one line a change, marked by what it is. */
export function renderDiff(d, emptyText = 'No changes.') {
  const items = [];
  const li = (kind, ...text) => items.push(h('li', { class: `chg chg-${kind}`, dataset: { change: kind } }, h('span', { class: 'chg-mark', 'aria-hidden': 'true' }, { added: '+', removed: '−', renamed: '↷', changed: '~' }[kind]), ...text));
  for (const r of d.components.renamed) li('renamed', 'Renamed ', h('q', {}, r.from), ' to ', h('q', {}, r.to));
  for (const n of d.components.added) li('added', 'Added component ', h('q', {}, n));
  for (const n of d.components.removed) li('removed', 'Removed component ', h('q', {}, n));
  for (const c of d.components.changed) li('changed', 'Changed ', h('q', {}, c.name), `: ${c.fields.join(', ')}`);
  for (const e of d.connections.added) li('added', `Connected ${e.from} → ${e.to}`);
  for (const e of d.connections.removed) li('removed', `Disconnected ${e.from} → ${e.to}`);
  for (const e of d.connections.changed) li('changed', `Changed connection ${e.from} → ${e.to}: ${e.fields.join(', ')}`);
  for (const f of d.fields) li('changed', `${f.field}: ${short(f.from)} → ${short(f.to)}`);
  if (!items.length) return h('p', { class: 'muted diff' }, emptyText);
  return h('ul', { class: 'diff' }, items);
}

/**
 * A three-way merge of two designs edited from the same base: theirs, plus what mine changed
 * since the base. Components are known by their layout ids (so renames merge), connections
 * by their ends' ids, and each setting merges on its own: a setting only one side changed
 * takes that side's value. Where both changed the same setting differently, mine wins and the
 * clash is listed, so the person can see what was overruled.
 */
export function mergeDesigns(base, mine, theirs) {
  const clashes = [];
  const idMap = (doc) => {
    const ids = idsOf(doc.layout);
    const m = new Map();
    for (const c of (doc.design?.components || [])) if (c && typeof c.name === 'string') m.set(ids[c.name] || `name:${c.name}`, c);
    return m;
  };
  const B = idMap(base); const M = idMap(mine); const T = idMap(theirs);
  const merge3 = (b, m, t, what) => {
    const out = {};
    const keys = new Set([...Object.keys(b || {}), ...Object.keys(m || {}), ...Object.keys(t || {})]);
    for (const k of keys) {
      const bv = b?.[k]; const mv = m?.[k]; const tv = t?.[k];
      let v;
      if (eq(mv, bv)) v = tv; else if (eq(tv, bv) || eq(mv, tv)) v = mv; else { v = mv; clashes.push(`${what}: ${k}`); }
      if (v !== undefined) out[k] = v;
    }
    return out;
  };
  const merged = new Map();
  const order = [...T.keys(), ...[...M.keys()].filter((k) => !T.has(k))];
  for (const id of order) {
    const b = B.get(id); const m = M.get(id); const t = T.get(id);
    if (!b) { merged.set(id, clone(t || m)); continue; }
    if (!m && !t) continue;
    if (!m) { if (!eq(t, b)) { clashes.push(`${t.name}: you removed it, they changed it`); } else continue; merged.set(id, clone(t)); continue; }
    if (!t) { if (!eq(m, b)) { clashes.push(`${m.name}: they removed it, you changed it`); merged.set(id, clone(m)); } continue; }
    merged.set(id, merge3(b, m, t, m.name));
  }
  // Names must stay unique: a clash of names keeps theirs and renames mine.
  const seen = new Set();
  for (const c of merged.values()) {
    if (seen.has(c.name)) { const n = `${c.name} (mine)`; clashes.push(`${c.name}: both sides have a component of this name`); c.name = n; }
    seen.add(c.name);
  }
  const nameOf = new Map([...merged.entries()].map(([id, c]) => [id, c.name]));
  const edgeMap = (doc) => {
    const ids = idsOf(doc.layout);
    const m = new Map();
    for (const e of (doc.design?.connections || [])) {
      if (!e || typeof e.from !== 'string' || typeof e.to !== 'string') continue;
      m.set(`${ids[e.from] || `name:${e.from}`}\u0000${ids[e.to] || `name:${e.to}`}`, e);
    }
    return m;
  };
  const EB = edgeMap(base); const EM = edgeMap(mine); const ET = edgeMap(theirs);
  const connections = [];
  for (const key of [...ET.keys(), ...[...EM.keys()].filter((k) => !ET.has(k))]) {
    const b = EB.get(key); const m = EM.get(key); const t = ET.get(key);
    let e;
    if (!b) e = clone(t || m);
    else if (!m && !t) continue;
    else if (!m) { if (eq(t, b)) continue; e = clone(t); }
    else if (!t) { if (eq(m, b)) continue; e = clone(m); }
    else e = merge3(b, m, t, `${m.from} → ${m.to}`);
    const [fromId, toId] = key.split('\u0000');
    if (!nameOf.has(fromId) || !nameOf.has(toId)) continue;
    e.from = nameOf.get(fromId); e.to = nameOf.get(toId);
    connections.push(e);
  }
  const top = (d) => { const x = { ...(d || {}) }; delete x.components; delete x.connections; return x; };
  const design = { ...merge3(top(base.design), top(mine.design), top(theirs.design), 'design'), components: [...merged.values()], connections };
  const pos = (doc) => (doc.layout && doc.layout.positions) || {};
  const positions = {};
  for (const id of merged.keys()) {
    const p = eq(pos(mine)[id], pos(base)[id]) ? (pos(theirs)[id] || pos(mine)[id]) : pos(mine)[id];
    if (p) positions[id] = p;
  }
  const ids = {};
  for (const [id, c] of merged) if (!id.startsWith('name:')) ids[c.name] = id;
  const layout = { ...(theirs.layout || {}), ids, positions };
  return { design, layout, clashes };
}

const clone = (x) => (x === undefined ? x : JSON.parse(JSON.stringify(x)));
