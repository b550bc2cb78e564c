// One run's live stream: /ws/simulation/{id}, authenticated by its first frame, resumed after
// any lost connection from the last offset it had (the gateway then sends exactly the windows
// after it: no gap, no duplicate). A finished run replays every stored window, then its end.
import { token, refresh } from './api.js';

const num = (offset) => Number(String(offset || '0').split('-')[0]) || 0;

/** False in a browser without WebSocket: no stream there (the dock follows the run by REST). */
export const streamable = () => typeof WebSocket === 'function';

export class RunStream {
  /**
   * handlers: onWindow(data, offset), onEnd(type, data), onState('connecting'|'live'|
   * 'reconnecting'|'ended'|'failed'|'unavailable', detail). 'unavailable' (no WebSocket in
   * this browser) comes at once and is the stream's last word.
   */
  constructor(id, handlers, since = '0') {
    this.id = id;
    this.h = handlers;
    this.offset = since;
    this.ws = null;
    this.done = false;
    this.retry = 0;
    this.timer = null;
    this.reconnects = 0;
    // A page that goes offline has a dead socket even before the browser says so: drop it,
    // and reconnect as soon as the network is back.
    this.onOffline = () => { if (this.ws) this.drop(); };
    this.onOnline = () => { if (!this.done && !this.ws) { clearTimeout(this.timer); this.retry = 0; this.connect(); } };
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
    // A socket can also die silently (a paused run sends nothing): after 15 s without a
    // frame the page pings ({"type":"ping"}, answered with a pong frame), and drops the
    // socket if 10 s more pass without one.
    this.heard = performance.now(); this.pinged = 0;
    this.watchdog = setInterval(() => {
      const sock = this.ws;
      if (!sock || sock.readyState !== WebSocket.OPEN) return;
      const now = performance.now();
      if (this.pinged && now - this.pinged > 10000) { this.drop(); return; }
      if (!this.pinged && now - this.heard > 15000) { this.pinged = now; sock.send(JSON.stringify({ type: 'ping', id: String(Math.round(now)) })); }
    }, 2500);
    this.connect();
  }

  connect() {
    if (this.done) return;
    if (!streamable()) { this.done = true; this.unlisten(); this.h.onState?.('unavailable'); return; }
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sock = new WebSocket(`${proto}//${location.host}/ws/simulation/${encodeURIComponent(this.id)}`);
    this.ws = sock;
    this.h.onState?.(this.reconnects ? 'reconnecting' : 'connecting');
    sock.onopen = () => { this.heard = performance.now(); this.pinged = 0; sock.send(JSON.stringify({ type: 'auth', token: token(), since: this.offset })); };
    sock.onmessage = (m) => {
      if (this.ws !== sock) return;
      this.heard = performance.now(); this.pinged = 0;
      let f; try { f = JSON.parse(m.data); } catch { return; }
      if (f.type === 'auth_ok') { this.retry = 0; this.h.onState?.('live'); return; }
      if (f.type === 'simulation.window') {
        // Never twice, whatever happens around a reconnection.
        if (num(f.offset) <= num(this.offset)) return;
        this.offset = f.offset;
        this.h.onWindow(f.data, f.offset);
        return;
      }
      if (f.type && f.type.startsWith('simulation.')) {
        this.offset = f.offset || this.offset;
        this.done = true;
        this.unlisten();
        this.h.onEnd?.(f.type.slice('simulation.'.length), f.data || {});
        this.h.onState?.('ended');
      }
    };
    sock.onclose = (e) => { if (this.ws === sock) { this.ws = null; this.lost(e.code, e.reason); } };
  }

  async lost(code, reason) {
    if (this.done) return;
    if (code === 4004 || code === 1008) {
      this.done = true;
      this.unlisten();
      this.h.onState?.('failed', code === 4004 ? 'This run is not visible to you (or no longer exists).' : reason);
      return;
    }
    this.reconnects++;
    this.h.onState?.('reconnecting');
    if (code === 4009 || code === 4001) { try { await refresh(); } catch { /* the retry tells */ } }
    // 4008 (too slow), 1001 (server going away), a dropped network: back soon, from the
    // last offset.
    if (!navigator.onLine) return; // the online event reconnects
    const delay = Math.min(5000, 200 * 2 ** this.retry++) * (0.75 + Math.random() / 4);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Drops the socket as a lost connection would (the stream reconnects by itself). */
  drop() {
    const sock = this.ws;
    if (!sock) return;
    this.ws = null;
    sock.close(4000, 'dropped by the page');
    this.lost(4000);
  }

  unlisten() {
    clearInterval(this.watchdog);
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
  }

  close() {
    this.done = true;
    this.unlisten();
    clearTimeout(this.timer);
    if (this.ws) { const w = this.ws; this.ws = null; w.close(1000); }
  }
}
