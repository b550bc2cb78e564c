// Live collaboration (docs/collaboration.md): the ops every replica applies alike, the diff
// that turns an editor change into small ops, and the session on /ws/collaboration/{id}
// (the confirmed document, one's own pending edits on top, presence, reconnection).
import { token, refresh } from './api.js';

export const MAX_OPS = 256;
const MAX_PATH = 32;
const MAX_KEY_CHARS = 200;
const MAX_MATCH_FIELDS = 4;
const PRESENCE_MS = 50; // at most 20 presence frames a second

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const clone = (x) => (x === undefined ? undefined : JSON.parse(JSON.stringify(x)));
// The server counts a key's characters (Unicode scalar values), not UTF-16 units.
const chars = (s) => [...s].length;
const isMatcher = (seg) => isObj(seg) && Object.keys(seg).length >= 1 && Object.keys(seg).length <= MAX_MATCH_FIELDS
  && Object.values(seg).every((v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)));
/** An element a matcher picks: an object whose fields equal all of the matcher's. */
const matches = (el, m) => isObj(el) && Object.keys(m).every((k) => has(el, k) && el[k] === m[k]);

// A key named __proto__ (valid JSON) must stay a plain own property.
function put(o, k, v) {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}

/** Deep equality of JSON values (key order does not matter). */
export function same(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => has(b, k) && same(a[k], b[k]));
}

// ---------- ops ----------

/** What is wrong with one op (the server refuses the whole edit for it), or null. */
export function opProblem(op) {
  if (!isObj(op)) return 'an op is an object';
  for (const k of Object.keys(op)) if (!['op', 'path', 'value'].includes(k)) return `unknown field ${k}`;
  const p = op.path;
  if (!Array.isArray(p)) return 'path must be an array';
  if (p.length < 1 || p.length > MAX_PATH) return `a path has 1 to ${MAX_PATH} segments`;
  if (p[0] !== 'design' && p[0] !== 'layout') return 'a path starts with "design" or "layout"';
  for (let i = 0; i < p.length; i++) {
    const s = p[i];
    if (typeof s === 'string') { if (chars(s) > MAX_KEY_CHARS) return `path[${i}]: a key is at most ${MAX_KEY_CHARS} characters`; } else if (!(i > 0 && isMatcher(s))) return `path[${i}]: a key or a matcher`;
  }
  if (op.op === 'set') {
    if (!has(op, 'value')) return 'a set needs a value';
    if (p.length === 1 && !isObj(op.value)) return 'the design and the layout are objects';
    return null;
  }
  if (op.op === 'delete') {
    if (p.length === 1) return 'the design or the layout cannot be deleted';
    if (has(op, 'value')) return 'a delete has no value';
    return null;
  }
  return 'op must be set or delete';
}

/** What is wrong with an edit's ops (nothing of it applies), or null. */
export function editProblem(ops) {
  if (!Array.isArray(ops)) return 'ops must be an array of ops';
  if (ops.length < 1 || ops.length > MAX_OPS) return `an edit has 1 to ${MAX_OPS} ops, not ${ops.length}`;
  for (let i = 0; i < ops.length; i++) { const e = opProblem(ops[i]); if (e) return `ops[${i}]: ${e}`; }
  return null;
}

/**
 * Applies one op to `doc` ({design, layout}) in place, by the rules of the spec (the same as
 * actors/project/src/ops.rs). What finds nothing is skipped, never an error: it is what a
 * concurrent edit leaves behind, and every replica skips it alike. Answers whether it changed
 * anything.
 */
export function applyOp(doc, op) {
  if (opProblem(op)) return false;
  const path = op.path;
  let at = doc;
  for (const seg of path.slice(0, -1)) {
    if (typeof seg === 'string') {
      if (!isObj(at) || !has(at, seg)) return false;
      at = at[seg];
    } else {
      if (!Array.isArray(at)) return false;
      const found = at.find((e) => matches(e, seg));
      if (found === undefined) return false;
      at = found;
    }
  }
  const last = path[path.length - 1];
  if (typeof last === 'string' && isObj(at)) {
    if (op.op === 'set') { put(at, last, clone(op.value)); return true; }
    if (!has(at, last)) return false;
    delete at[last];
    return true;
  }
  if (typeof last !== 'string' && Array.isArray(at)) {
    const i = at.findIndex((e) => matches(e, last));
    if (op.op === 'set') { if (i >= 0) at[i] = clone(op.value); else at.push(clone(op.value)); return true; }
    if (i < 0) return false;
    at.splice(i, 1);
    return true;
  }
  return false; // a key on an array, a matcher on an object, a scalar parent
}

/** Applies an edit's ops in order, in place; a malformed edit (refused by the server) applies none. */
export function applyEdit(doc, ops) {
  if (editProblem(ops)) return doc;
  for (const op of ops) applyOp(doc, op);
  return doc;
}

// ---------- the diff: an editor change as ops ----------

const setOp = (path, value) => ({ op: 'set', path, value: clone(value) });
const delOp = (path) => ({ op: 'delete', path });
const longKey = (o) => isObj(o) && Object.keys(o).some((k) => chars(k) > MAX_KEY_CHARS);
// A position is one value: a move is one op, not one for x and one for y.
const atomic = (path) => path.length === 3 && path[0] === 'layout' && path[1] === 'positions';

/** Ops turning value `x` at `path` into `y` (undefined: absent), key by key down objects. */
function diffValue(path, x, y, ops) {
  if (same(x, y)) return;
  if (y === undefined) { ops.push(delOp(path)); return; }
  if (isObj(x) && isObj(y) && path.length < MAX_PATH && !atomic(path) && !longKey(x) && !longKey(y)) {
    for (const k of Object.keys(x)) if (!has(y, k)) ops.push(delOp([...path, k]));
    for (const k of Object.keys(y)) diffValue([...path, k], has(x, k) ? x[k] : undefined, y[k], ops);
    return;
  }
  ops.push(setOp(path, y));
}

/** The fields of two objects (minus `skip`) at `path`. */
function diffFields(path, x, y, skip, ops) {
  for (const k of Object.keys(x)) if (!skip.includes(k) && !has(y, k)) ops.push(delOp([...path, k]));
  for (const k of Object.keys(y)) if (!skip.includes(k)) diffValue([...path, k], has(x, k) ? x[k] : undefined, y[k], ops);
}

// A list a matcher can address: objects with unique string keys.
function keyed(list, key) {
  if (!Array.isArray(list)) return false;
  const seen = new Set();
  for (const e of list) {
    if (!isObj(e)) return false;
    const k = key(e);
    if (k === null || seen.has(k)) return false;
    seen.add(k);
  }
  return true;
}
const str = (v) => typeof v === 'string' && v !== '';
const compKey = (c) => (str(c.name) ? c.name : null);
const connKey = (e) => (str(e.from) && str(e.to) ? JSON.stringify([e.from, e.to]) : null);

/**
 * Components, picked by {"name"}. A component whose layout id stays while its name changes
 * is renamed (one op), so a concurrent edit of its other fields still lands. Deletions come
 * first (a name deleted and added again is a new component), additions last (appended).
 * Answers the renames (old name -> new name), or null when it fell back to one set.
 */
function diffComponents(a, b, idsA, idsB, ops) {
  const P = ['design', 'components'];
  if (!keyed(a, compKey) || !keyed(b, compKey)) { diffValue(P, a, b, ops); return null; }
  const aByName = new Map(a.map((c) => [c.name, c]));
  const aById = new Map();
  for (const c of a) { const id = idsA[c.name]; if (id !== undefined) aById.set(id, c); }
  const pair = new Map(); // b component -> a component
  const taken = new Set();
  for (const c of b) {
    const id = idsB[c.name];
    const x = id !== undefined ? aById.get(id) : undefined;
    if (x && !taken.has(x)) { pair.set(c, x); taken.add(x); }
  }
  for (const c of b) {
    const x = aByName.get(c.name);
    if (!pair.has(c) && x && !taken.has(x)) { pair.set(c, x); taken.add(x); }
  }
  const renames = new Map();
  for (const [c, x] of pair) if (c.name !== x.name) renames.set(x.name, c.name);
  // A rename onto a name another surviving component still has would be picked by the wrong
  // matcher: one set of the whole list instead.
  for (const to of renames.values()) {
    const x = aByName.get(to);
    if (x && taken.has(x)) { ops.push(setOp(P, b)); return null; }
  }
  for (const x of a) if (!taken.has(x)) ops.push(delOp([...P, { name: x.name }]));
  for (const [from, to] of renames) ops.push(setOp([...P, { name: from }, 'name'], to));
  for (const c of b) {
    const x = pair.get(c);
    if (x) diffFields([...P, { name: c.name }], x, c, ['name'], ops);
    else ops.push(setOp([...P, { name: c.name }], c));
  }
  return renames;
}

/**
 * Connections, picked by {"from", "to"}; their ends follow renamed components (a re-pointed
 * connection is replaced in place, one op).
 */
function diffConnections(a, b, renames, ops) {
  const P = ['design', 'connections'];
  if (!keyed(a, connKey) || !keyed(b, connKey)) { diffValue(P, a, b, ops); return; }
  const ren = (n) => renames.get(n) ?? n;
  const bByKey = new Map(b.map((e) => [connKey(e), e]));
  const pair = new Map(); // b connection -> a connection
  for (const x of a) {
    const e = bByKey.get(connKey({ from: ren(x.from), to: ren(x.to) }));
    if (e && !pair.has(e)) pair.set(e, x);
  }
  const paired = new Set(pair.values());
  // A connection re-pointed or added onto the key another surviving one has before its own
  // turn would be picked by the wrong matcher: one set of the whole list instead.
  const oldKeys = new Set([...paired].map(connKey));
  for (const e of b) {
    const x = pair.get(e);
    if ((!x || connKey(x) !== connKey(e)) && oldKeys.has(connKey(e))) { ops.push(setOp(P, b)); return; }
  }
  for (const x of a) if (!paired.has(x)) ops.push(delOp([...P, { from: x.from, to: x.to }]));
  for (const e of b) {
    const x = pair.get(e);
    if (!x) ops.push(setOp([...P, { from: e.from, to: e.to }], e));
    else if (connKey(e) !== connKey(x)) ops.push(setOp([...P, { from: x.from, to: x.to }], e)); // in place
    else diffFields([...P, { from: e.from, to: e.to }], x, e, ['from', 'to'], ops);
  }
}

/**
 * The ops that turn document `a` into `b` (both {design, layout}), as small as the change:
 * a field is one set, a move one set of layout.positions.<id>, a rename one set of the name
 * (plus the layout's ids and the connections' ends). An edit over MAX_OPS becomes one set per
 * part. Applied to `a`, they give `b` (new components and connections at the end).
 */
export function diffDocs(a, b) {
  let ops = [];
  const da = a.design; const db = b.design;
  if (isObj(da) && isObj(db) && !longKey(da) && !longKey(db)) {
    for (const k of Object.keys(da)) if (k !== 'components' && k !== 'connections' && !has(db, k)) ops.push(delOp(['design', k]));
    for (const k of Object.keys(db)) if (k !== 'components' && k !== 'connections') diffValue(['design', k], has(da, k) ? da[k] : undefined, db[k], ops);
    const idsA = isObj(a.layout?.ids) ? a.layout.ids : {};
    const idsB = isObj(b.layout?.ids) ? b.layout.ids : {};
    let renames = null;
    if (has(da, 'components') && has(db, 'components')) renames = diffComponents(da.components, db.components, idsA, idsB, ops);
    else diffValue(['design', 'components'], da.components, db.components, ops);
    if (has(da, 'connections') && has(db, 'connections')) diffConnections(da.connections, db.connections, renames || new Map(), ops);
    else diffValue(['design', 'connections'], da.connections, db.connections, ops);
  } else if (!same(da, db) && isObj(db)) ops.push(setOp(['design'], db));
  if (isObj(a.layout) && isObj(b.layout)) diffValue(['layout'], a.layout, b.layout, ops);
  else if (!same(a.layout, b.layout) && isObj(b.layout)) ops.push(setOp(['layout'], b.layout));
  if (ops.length > MAX_OPS) {
    ops = [];
    if (!same(da, db)) ops.push(setOp(['design'], db));
    if (!same(a.layout, b.layout)) ops.push(setOp(['layout'], b.layout));
  }
  return ops;
}

// ---------- the session ----------

const num = (offset) => Number(offset || 0) || 0;
const randomId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`).replace(/-/g, '').slice(0, 16);

export class CollabSession {
  /**
   * One person's live session on a project. `initial` ({design, layout}, from the REST read)
   * is what edits apply to until the first sync arrives. handlers: onDocument(doc, {remote}),
   * onPresence(peers), onRole(role), onError(frame), onStatus('connecting'|'live'|
   * 'reconnecting'|'offline'|'gone'), onPending(count of edits not yet committed).
   */
  constructor(projectId, handlers, initial = null) {
    this.id = projectId;
    this.h = handlers;
    this.clientId = `tab-${randomId()}`;
    this.nextEditId = 1;
    this.confirmed = initial ? clone(initial) : null; // the server's document as of `offset`
    this.offset = null; // null until the first sync: the first connection asks for a full one
    this.version = null;
    this.pending = []; // own edits not yet seen as a collaboration.edit: {edit_id, ops, seq}
    this.shown = this.confirmed ? clone(this.confirmed) : null;
    this.role = null;
    this.you = null;
    this.peers = new Map(); // session -> presence
    this.me = null; // own presence, sent throttled
    this.lastPresence = 0; this.presenceTimer = null;
    this.ws = null; this.ready = false; this.done = false; this.closing = false;
    this.retry = 0; this.failures = 0; this.timer = null; this.status = null;
    this.onOffline = () => { if (this.ws) this.drop(); this.setStatus('offline'); };
    this.onOnline = () => { if (!this.done && !this.ws) { clearTimeout(this.timer); this.retry = 0; this.connect(); } };
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
    // A socket can die without a close: after 15 s of silence ping, and drop it if 10 s more
    // pass without a frame (the same watchdog as a run's stream).
    this.heard = performance.now(); this.pinged = 0;
    this.watchdog = setInterval(() => {
      const sock = this.ws;
      if (!sock || sock.readyState !== WebSocket.OPEN) return;
      const now = performance.now();
      if (this.pinged && now - this.pinged > 10000) { this.drop(); return; }
      if (!this.pinged && now - this.heard > 15000) { this.pinged = now; sock.send(JSON.stringify({ type: 'ping' })); }
    }, 2500);
    this.connect();
  }

  /** The shown document: the confirmed one with one's pending edits on top (a copy). */
  doc() { return this.shown ? clone(this.shown) : null; }

  /** Edits the document: answers the new shown document (a copy). Throws on a malformed edit. */
  edit(ops) {
    if (this.done) return this.doc();
    const problem = editProblem(ops);
    if (problem) throw new Error(`not an edit: ${problem}`);
    const p = { edit_id: this.nextEditId++, ops: clone(ops), seq: null };
    this.pending.push(p);
    if (this.shown) applyEdit(this.shown, p.ops);
    if (this.ready) this.sendEdit(p);
    this.h.onPending?.(this.pending.length);
    return this.doc();
  }

  /** Own selection and pointer (world coordinates), sent at most 20 times a second. */
  presence({ selection = null, pointer = null }) {
    this.me = { type: 'presence', selection, pointer };
    if (!this.ready || this.presenceTimer) return;
    const wait = this.lastPresence + PRESENCE_MS - performance.now();
    if (wait <= 0) this.sendPresence();
    else this.presenceTimer = setTimeout(() => { this.presenceTimer = null; if (this.ready) this.sendPresence(); }, wait);
  }

  sendPresence() {
    if (!this.me) return;
    this.lastPresence = performance.now();
    this.send(this.me);
  }

  sendEdit(p) { this.send({ type: 'edit', client_id: this.clientId, edit_id: p.edit_id, ops: p.ops }); }

  send(frame) {
    const sock = this.ws;
    if (sock && sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify(frame));
  }

  setStatus(s) {
    if (this.status === s || this.done && s !== 'gone') return;
    this.status = s;
    this.h.onStatus?.(s);
  }

  connect() {
    if (this.done) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sock = new WebSocket(`${proto}//${location.host}/ws/collaboration/${encodeURIComponent(this.id)}`);
    this.ws = sock;
    this.ready = false;
    if (!this.status) this.setStatus('connecting');
    sock.onopen = () => {
      this.heard = performance.now(); this.pinged = 0;
      const auth = { type: 'auth', token: token() };
      if (this.offset !== null) auth.since = this.offset;
      sock.send(JSON.stringify(auth));
      // A resumed session may have nothing to say: the pong tells that the auth went through.
      sock.send(JSON.stringify({ type: 'ping' }));
    };
    sock.onmessage = (m) => {
      if (this.ws !== sock) return;
      this.heard = performance.now(); this.pinged = 0;
      let f; try { f = JSON.parse(m.data); } catch { return; }
      this.frame(f);
    };
    sock.onclose = (e) => { if (this.ws === sock) { this.ws = null; this.lost(e.code); } };
  }

  frame(f) {
    if (f.type === 'collaboration.sync') { this.sync(f); this.becomeReady(); return; }
    this.becomeReady();
    const d = f.data || {};
    if (f.type === 'collaboration.edit') this.remoteEdit(num(f.offset), d);
    else if (f.type === 'collaboration.ack') this.ack(num(f.offset), d);
    else if (f.type === 'collaboration.presence') {
      if (d.session === this.you?.session) return;
      this.peers.set(d.session, d);
      this.h.onPresence?.([...this.peers.values()]);
    } else if (f.type === 'collaboration.left') {
      if (this.peers.delete(d.session)) this.h.onPresence?.([...this.peers.values()]);
    } else if (f.type === 'error') this.refused(f);
  }

  /** The first frame on this socket: send what waits (pending edits in order, presence). */
  becomeReady() {
    if (this.ready || this.confirmed === null || this.offset === null) return;
    this.ready = true;
    this.retry = 0; this.failures = 0;
    for (const p of this.pending) this.sendEdit(p);
    if (this.me) this.sendPresence();
    this.setStatus('live');
  }

  sync(f) {
    const d = f.data || {};
    if (d.you) this.you = d.you;
    this.peers = new Map((d.peers || []).filter((p) => p.session !== this.you?.session).map((p) => [p.session, p]));
    if (d.role && d.role !== this.role) { this.role = d.role; this.h.onRole?.(d.role); }
    if (d.version !== undefined) this.version = d.version;
    // Resumed from `since` (`resumed`, no document): who is here and the role only; the
    // edits after `since` follow (its offset is the latest edit's, not what this page has).
    if (!d.resumed && isObj(d.design)) {
      const first = this.offset === null;
      this.confirmed = { design: d.design, layout: isObj(d.layout) ? d.layout : {} };
      this.offset = String(f.offset ?? '0');
      // Pending edits the server already committed (acknowledged at or before the sync's
      // edit) are in the document now.
      this.pending = this.pending.filter((p) => !(p.seq !== null && p.seq <= num(this.offset)));
      this.recompute(true, { sync: true, first });
      this.h.onPending?.(this.pending.length);
    }
    this.h.onPresence?.([...this.peers.values()]);
  }

  remoteEdit(n, d) {
    if (this.confirmed === null || this.offset === null || n <= num(this.offset)) return; // never twice
    if (n !== num(this.offset) + 1) { this.drop(); return; } // a gap: resume from what we have
    applyEdit(this.confirmed, d.ops);
    this.offset = String(n);
    const own = d.client_id === this.clientId;
    if (own) this.pending = this.pending.filter((p) => p.edit_id !== d.edit_id);
    // One's own edit moves from pending to confirmed: what shows stays the same.
    this.recompute(!own);
    if (own) { this.h.onPending?.(this.pending.length); this.lingerDone(); }
  }

  ack(n, d) {
    if (d.client_id && d.client_id !== this.clientId) return;
    const p = this.pending.find((x) => x.edit_id === d.edit_id);
    if (!p) return;
    if (n <= num(this.offset)) { // already applied as part of the confirmed document (a sync)
      this.pending = this.pending.filter((x) => x !== p);
      this.recompute(false);
      this.h.onPending?.(this.pending.length);
      this.lingerDone();
    } else p.seq = n;
  }

  refused(f) {
    if (f.edit_id !== undefined && f.edit_id !== null) {
      const before = this.pending.length;
      this.pending = this.pending.filter((p) => p.edit_id !== f.edit_id);
      if (this.pending.length !== before) { this.recompute(true); this.h.onPending?.(this.pending.length); }
    }
    this.h.onError?.(f);
  }

  recompute(notify, extra = {}) {
    if (this.confirmed === null) return;
    const was = this.shown;
    const doc = clone(this.confirmed);
    for (const p of this.pending) applyEdit(doc, p.ops);
    this.shown = doc;
    if (notify || !same(was, doc)) this.h.onDocument?.(clone(doc), { remote: true, ...extra });
  }

  async lost(code) {
    const wasReady = this.ready;
    this.ready = false;
    if (this.done) return;
    if (code === 4004) {
      this.stop();
      this.setStatus('gone');
      return;
    }
    if (!wasReady) this.failures++;
    this.setStatus(!navigator.onLine || this.failures >= 3 ? 'offline' : 'reconnecting');
    if (code === 4009 || code === 4001) { try { await refresh(); } catch { /* the retry tells */ } }
    if (this.done || !navigator.onLine) return; // the online event reconnects
    const delay = Math.min(5000, 250 * 2 ** this.retry++) * (0.75 + Math.random() / 4);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Drops the socket as a lost connection would (it reconnects by itself, from `offset`). */
  drop() {
    const sock = this.ws;
    if (!sock) return;
    this.ws = null;
    sock.close(4000, 'dropped by the page');
    this.lost(4000);
  }

  stop() {
    this.done = true;
    clearInterval(this.watchdog);
    clearTimeout(this.timer);
    clearTimeout(this.presenceTimer);
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
  }

  /** Leaves: edits already sent get up to 3 s to be committed before the socket closes. */
  close() {
    this.h = {};
    this.stop();
    const sock = this.ws;
    if (!sock) return;
    const bye = () => { clearTimeout(this.lingerTimer); if (this.ws) { this.ws = null; sock.close(1000); } };
    if (this.ready && this.pending.length) { this.closing = bye; this.lingerTimer = setTimeout(bye, 3000); } else bye();
  }

  lingerDone() { if (this.closing && !this.pending.length) this.closing(); }
}
