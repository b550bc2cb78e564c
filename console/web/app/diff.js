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
