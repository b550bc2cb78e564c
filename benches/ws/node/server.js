// The Node.js peer of benches/ws: what sdsim's /ws/notifications does for an announcement,
// written the ordinary way on the npm package `ws`, so that the bench has something to
// compare the gateway with on the same machine, in the same run, with the same client.
//
// - Accepts WebSockets on WS_PEER_PORT (127.0.0.1) at /ws/notifications. The first frame
//   must be {"type":"auth","token":...} (any token is accepted: there is no auth service
//   here), answered with {"type":"auth_ok","user_id":...,"session_id":...}; anything else,
//   or nothing within 5 s, closes with 4001 as sdsim does. {"type":"ping"} is answered with
//   {"type":"pong"}.
// - Pings every client every 10 s and drops a client silent for 30 s (sdsim's defaults).
// - Subscribes on Redis (WS_PEER_REDIS_URL) to WS_PEER_CHANNEL. Each message is an event
//   envelope (protocols/src/events.rs) and becomes the frame sdsim sends,
//   {"type","channel","offset","data"}, serialized once and sent to every authenticated
//   client, as sdsim's subscriber does with `system:announcements`.
//
// Prints "ready <port>" on stdout once listening and subscribed.
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');
const { createClient } = require('@redis/client');

const PORT = Number(process.env.WS_PEER_PORT);
const REDIS_URL = process.env.WS_PEER_REDIS_URL || 'redis://127.0.0.1:6379/';
const CHANNEL = process.env.WS_PEER_CHANNEL || 'system:announcements';
const RELATIVE = process.env.WS_PEER_RELATIVE || 'system:announcements';
const AUTH_TIMEOUT_MS = 5000;
const PING_INTERVAL_MS = 10000;
const CLIENT_TIMEOUT_MS = 30000;

const clients = new Set();
let sessions = 0;

const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({
  server,
  path: '/ws/notifications',
  perMessageDeflate: false,
  clientTracking: false,
});

wss.on('connection', (ws) => {
  let authed = false;
  ws.lastHeard = Date.now();
  const timer = setTimeout(() => ws.close(4001, 'authentication timeout'), AUTH_TIMEOUT_MS);
  ws.on('pong', () => { ws.lastHeard = Date.now(); });
  ws.on('message', (data, isBinary) => {
    ws.lastHeard = Date.now();
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      frame = null;
    }
    if (!authed) {
      clearTimeout(timer);
      if (isBinary || !frame || frame.type !== 'auth' || typeof frame.token !== 'string') {
        ws.close(4001, 'first frame must be {"type":"auth","token":...}');
        return;
      }
      authed = true;
      clients.add(ws);
      sessions += 1;
      ws.send(JSON.stringify({ type: 'auth_ok', user_id: 'bench', session_id: String(sessions) }));
      return;
    }
    if (frame && frame.type === 'ping') {
      ws.send(JSON.stringify(frame.id ? { type: 'pong', id: frame.id } : { type: 'pong' }));
    }
  });
  ws.on('close', () => {
    clearTimeout(timer);
    clients.delete(ws);
  });
  ws.on('error', () => {});
});

setInterval(() => {
  const now = Date.now();
  for (const ws of clients) {
    if (now - ws.lastHeard > CLIENT_TIMEOUT_MS) {
      ws.terminate();
    } else {
      ws.ping();
    }
  }
}, PING_INTERVAL_MS).unref();

function fanOut(message) {
  let envelope;
  try {
    envelope = JSON.parse(message);
  } catch {
    return;
  }
  const frame = Buffer.from(JSON.stringify({
    type: envelope.type,
    channel: RELATIVE,
    offset: envelope.id,
    data: envelope.data,
  }));
  for (const ws of clients) {
    ws.send(frame, { binary: false });
  }
}

async function main() {
  const sub = createClient({ url: REDIS_URL });
  sub.on('error', (e) => console.error(`redis: ${e.message}`));
  await sub.connect();
  await sub.subscribe(CHANNEL, fanOut);
  server.listen({ host: '127.0.0.1', port: PORT, backlog: 4096 }, () => {
    console.log(`ready ${PORT}`);
  });
}

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
