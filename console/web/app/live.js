// One run's live stream: /ws/simulation/{id}, authenticated by its first frame, resumed after
// any lost connection from the last offset it had (the gateway then sends exactly the windows
// after it: no gap, no duplicate). A finished run replays every stored window, then its end.
import { token, refresh } from './api.js';

const num = (offset) => Number(String(offset || '0').split('-')[0]) || 0;

export class RunStream {
  /**
   * handlers: onWindow(data, offset), onEnd(type, data), onState('connecting'|'live'|
   * 'reconnecting'|'ended'|'failed', detail).
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
    this.connect();
  }

  connect() {
    if (this.done) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sock = new WebSocket(`${proto}//${location.host}/ws/simulation/${encodeURIComponent(this.id)}`);
    this.ws = sock;
    this.h.onState?.(this.reconnects ? 'reconnecting' : 'connecting');
    sock.onopen = () => sock.send(JSON.stringify({ type: 'auth', token: token(), since: this.offset }));
    sock.onmessage = (m) => {
      if (this.ws !== sock) return;
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
        this.h.onEnd?.(f.type.slice('simulation.'.length), f.data || {});
        this.h.onState?.('ended');
      }
    };
    sock.onclose = async (e) => {
      if (this.ws !== sock) return;
      this.ws = null;
      if (this.done) return;
      if (e.code === 4004 || e.code === 1008) {
        this.done = true;
        this.h.onState?.('failed', e.code === 4004 ? 'This run is not visible to you (or no longer exists).' : e.reason);
        return;
      }
      this.reconnects++;
      this.h.onState?.('reconnecting');
      if (e.code === 4009 || e.code === 4001) { try { await refresh(); } catch { /* the retry tells */ } }
      // 4008 (too slow), 1001 (server going away), a dropped network: back soon, from the
      // last offset.
      const delay = Math.min(5000, 200 * 2 ** this.retry++) * (0.75 + Math.random() / 4);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  /** Drops the socket as a lost connection would (the stream reconnects by itself). */
  drop() { if (this.ws) this.ws.close(4000, 'dropped by the page'); }

  close() {
    this.done = true;
    clearTimeout(this.timer);
    if (this.ws) { const w = this.ws; this.ws = null; w.close(1000); }
  }
}
