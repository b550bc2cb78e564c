"""HAProxy failover, live: REST load and a run's WebSocket through HAProxy while one gateway
is killed with SIGKILL.

    python failover.py <https base> <cluster dir> <gateway HTTP addresses, comma-separated>

Asserts: HSTS on every answer and http->https handled by the config; REST failures stop
within 2 s of the kill; the WebSocket watcher that loses its gateway reconnects through
HAProxy (to another gateway) with ?since=<last offset> and receives every window exactly
once, then the end frame and close 1000. Prints the figures as one JSON line at the end.
"""

import json
import os
import re
import signal
import ssl
import sys
import threading
import time
import http.client
import urllib.parse

from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidHandshake

BASE, CLUSTER_DIR, GATEWAYS = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOSTPORT = urllib.parse.urlsplit(BASE).netloc
HOST, PORT = HOSTPORT.rsplit(":", 1)
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
LOAD_THREADS = int(os.environ.get("FAILOVER_THREADS", "6"))
PASSWORD = "a long enough password"


def request(method, path, body=None, token=None, conn=None, timeout=5, headers=None):
    own = conn is None
    if own:
        conn = http.client.HTTPSConnection(HOST, int(PORT), context=CTX, timeout=timeout)
    headers = {"content-type": "application/json", **(headers or {})}
    if token:
        headers["authorization"] = "Bearer " + token
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
    finally:
        if own:
            conn.close()


def check(cond, msg):
    if not cond:
        print("FAIL: " + msg, file=sys.stderr)
        sys.exit(1)


# --- a user and a run ------------------------------------------------------------------
email = f"failover-{os.getpid()}-{int(time.time())}@example.com"
st, h, b = request("POST", "/api/auth/register",
                   {"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"})
check(st == 201, f"register: {st} {b!r}")
check(h.get("strict-transport-security", "").startswith("max-age="), f"HSTS missing: {h}")
st, h, b = request("POST", "/api/auth/login", {"email": email, "password": PASSWORD})
check(st == 200, f"login: {st} {b!r}")
token = json.loads(b)["access_token"]

# X-Forwarded-For: a client's own value is replaced by HAProxy with the address it saw, and
# the gateways take it from HAProxy only (it connects from its own address, 127.0.0.2:
# gateway.trusted_proxies). A client on 127.0.0.3 logs in through HAProxy with a forged
# header: its session shows 127.0.0.3. The same forged header sent to a gateway directly is
# ignored: that session shows the peer, 127.0.0.1.
c = http.client.HTTPSConnection(HOST, int(PORT), context=CTX, timeout=5, source_address=("127.0.0.3", 0))
st, h, b = request("POST", "/api/auth/login", {"email": email, "password": PASSWORD}, conn=c,
                   headers={"X-Forwarded-For": "203.0.113.66", "Forwarded": "for=198.18.0.1",
                            "X-Real-IP": "198.18.0.2"})
c.close()
check(st == 200, f"login with a forged X-Forwarded-For: {st} {b!r}")
c = http.client.HTTPConnection(GATEWAYS[1], timeout=5)
c.request("POST", "/api/auth/login", body=json.dumps({"email": email, "password": PASSWORD}),
          headers={"content-type": "application/json", "X-Forwarded-For": "198.51.100.77"})
check(c.getresponse().status == 200, "direct login")
c.close()
st, h, b = request("GET", "/api/auth/sessions", token=token)
check(st == 200, f"sessions: {st} {b!r}")
ips = json.dumps(json.loads(b))
check("203.0.113.66" not in ips, f"HAProxy let a forged X-Forwarded-For through: {ips}")
check("198.18.0.1" not in ips and "198.18.0.2" not in ips, f"a forged Forwarded or X-Real-IP was believed: {ips}")
check("198.51.100.77" not in ips, f"a gateway believed X-Forwarded-For from a client: {ips}")
check("127.0.0.3" in ips, f"the gateway did not take HAProxy's X-Forwarded-For: {ips}")
check("127.0.0.2" not in ips, f"a session shows HAProxy's own address: {ips}")
print("X-Forwarded-For: set by HAProxy (a forged one replaced), taken from HAProxy only", flush=True)

with open(os.path.join(ROOT, "engine/templates/read_heavy_api_with_cache.json")) as f:
    design = json.load(f)
WINDOWS = 40
design["duration_s"] = WINDOWS
design["window_s"] = 1
# 40 simulated seconds at 4 per wall second: about 10 s of live windows.
st, h, b = request("POST", "/api/simulations", {"design": design, "seed": 7, "speed": 4}, token=token)
check(st == 201, f"start run: {st} {b!r}")
run = json.loads(b)["simulation"]["id"]


def gateway_sessions(addr):
    """Open WebSocket sessions a gateway reports on /metrics (None when it is down)."""
    try:
        c = http.client.HTTPConnection(addr, timeout=1)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
    except OSError:
        return None
    n = 0.0
    for line in text.splitlines():
        if line.startswith("sdsim_websocket_sessions{"):
            n += float(line.rsplit(" ", 1)[1])
    return n


def gateway_pid(addr):
    for name in ("gateway1", "gateway2", "gateway3"):
        env = open(os.path.join(CLUSTER_DIR, "ports.env")).read()
        if f"{name}_http={addr} " in env or f"{name}_http={addr}\n" in env:
            return int(open(os.path.join(CLUSTER_DIR, f"{name}.pid")).read()), name
    raise SystemExit(f"no gateway on {addr}")


# --- the watcher ------------------------------------------------------------------------
ws_state = {"offsets": [], "end": None, "close": None, "connects": 0, "gateway_of": [],
            "reconnect_s": None, "lost_at": None, "error": None, "failed_attempts": []}
ws_connected = threading.Event()


def watch():
    since = None
    while True:
        url = f"wss://{HOSTPORT}/ws/simulation/{run}" + (f"?since={since}" if since else "")
        try:
            ws = connect(url, ssl=CTX, open_timeout=3, close_timeout=2)
        except (OSError, InvalidStatus, InvalidHandshake, TimeoutError) as e:
            ws_state["failed_attempts"].append(f"{type(e).__name__}: {e}"[:120])
            # The killed gateway may still be in rotation for a moment: try again.
            if time.monotonic() - (ws_state["lost_at"] or time.monotonic()) > 10:
                ws_state["error"] = f"no reconnect within 10 s: {e}"
                return
            time.sleep(0.1)
            continue
        ws_state["connects"] += 1
        if ws_state["lost_at"] is not None and ws_state["reconnect_s"] is None:
            ws_state["reconnect_s"] = time.monotonic() - ws_state["lost_at"]
        try:
            ws.send(json.dumps({"type": "auth", "token": token}))
            first = json.loads(ws.recv(timeout=5))
            if first.get("type") != "auth_ok":
                ws_state["error"] = f"auth: {first}"
                return
            ws_connected.set()
            while True:
                f = json.loads(ws.recv(timeout=15))
                if f.get("type") == "simulation.window":
                    ws_state["offsets"].append(f["offset"])
                    since = f["offset"]
                elif f.get("type", "").startswith("simulation."):
                    ws_state["end"] = f
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            if code == 1000:
                ws_state["close"] = 1000
                return
            ws_state["lost_at"] = time.monotonic()
            ws_state["lost_code"] = code
        except TimeoutError:
            ws_state["error"] = f"no frame for 15 s after {len(ws_state['offsets'])} windows"
            return


watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
check(ws_connected.wait(10), "the WebSocket did not authenticate")

# --- REST load --------------------------------------------------------------------------
results = []  # (monotonic time it ended, ok, method, status or error)
stop = threading.Event()


def load(method):
    """GETs on one kept-alive connection (HAProxy may retry them elsewhere) or POSTs
    (retried only if they never reached a gateway: one in flight on the killed gateway
    fails)."""
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPSConnection(HOST, int(PORT), context=CTX, timeout=5)
            if method == "GET":
                st, _, _ = request("GET", "/api/auth/profile", token=token, conn=conn)
            else:
                # A fresh connection each time, as short-lived clients do.
                st, _, _ = request("POST", "/api/notifications/read", {"all": True}, token=token)
            ok = st == 200
            what = st
        except (OSError, http.client.HTTPException) as e:
            ok = False
            what = type(e).__name__
            conn = None
        # By the time it ended: a request started just before the kill may fail through it.
        results.append((time.monotonic(), ok, method, what))
        if not ok:
            time.sleep(0.01)


threads = [threading.Thread(target=load, args=("GET" if i % 2 == 0 else "POST",), daemon=True)
           for i in range(LOAD_THREADS)]
for t in threads:
    t.start()
time.sleep(1.5)

# The gateway carrying the watcher's socket is the one killed.
victim = None
for addr in GATEWAYS:
    if (gateway_sessions(addr) or 0) >= 1:
        victim = addr
check(victim is not None, "no gateway reports the watcher's session")
pid, name = gateway_pid(victim)
windows_before = len(ws_state["offsets"])
t_kill = time.monotonic()
os.kill(pid, signal.SIGKILL)


def marked_down():
    """Seconds until HAProxy's exporter says the killed gateway is DOWN."""
    stats = re.search(r"haproxy_stats=(\S+)", open(os.path.join(CLUSTER_DIR, "ports.env")).read()).group(1)
    while time.monotonic() - t_kill < 10:
        try:
            c = http.client.HTTPConnection(stats, timeout=1)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
            if f'haproxy_server_status{{proxy="gateways",server="{name}",state="DOWN"}} 1' in text:
                down["s"] = time.monotonic() - t_kill
                return
        except OSError:
            pass
        time.sleep(0.05)


down = {"s": None}
downer = threading.Thread(target=marked_down, daemon=True)
downer.start()
print(f"killed {name} ({victim}, pid {pid}) with SIGKILL after {windows_before} windows", flush=True)
time.sleep(4)
stop.set()
for t in threads:
    t.join(10)

before = [r for r in results if r[0] < t_kill]
after = [r for r in results if r[0] >= t_kill]
failures_after = [r[0] - t_kill for r in after if not r[1]]
failure_window = max(failures_after) if failures_after else 0.0
check(before and all(r[1] for r in before),
      f"failures before the kill: {[(r[2], r[3]) for r in before if not r[1]]}")
check(len(after) > 50, f"too little load after the kill: {len(after)} requests")

# --- the watcher's end ------------------------------------------------------------------
watcher.join(60)
check(not watcher.is_alive(), f"the watcher did not finish: {len(ws_state['offsets'])} windows")
check(ws_state["error"] is None, f"watcher: {ws_state['error']}")
expected = [f"{n}-0" for n in range(1, WINDOWS + 1)]
dups = len(ws_state["offsets"]) - len(set(ws_state["offsets"]))
check(ws_state["offsets"] == expected,
      f"windows not once each in order: got {len(ws_state['offsets'])}, {dups} duplicates, "
      f"missing {sorted(set(expected) - set(ws_state['offsets']))[:5]}")
check(ws_state["end"] is not None and ws_state["end"].get("type") == "simulation.completed",
      f"end frame: {ws_state['end']}")
check(ws_state["close"] == 1000, f"close code {ws_state['close']}")
check(ws_state["connects"] >= 2, "the watcher never lost its gateway")

figures = {
    "requests": len(results),
    "requests_after_kill": len(after),
    "failures_after_kill": len(failures_after),
    "get_failures": sum(1 for r in after if not r[1] and r[2] == "GET"),
    "post_failures": sum(1 for r in after if not r[1] and r[2] == "POST"),
    "failure_kinds": sorted({f"{r[2]} {r[3]}" for r in after if not r[1]}),
    "failure_window_s": round(failure_window, 3),
    "windows": len(ws_state["offsets"]),
    "windows_before_kill": windows_before,
    "duplicates": dups,
    "ws_connects": ws_state["connects"],
    "ws_lost_close_code": ws_state.get("lost_code"),
    "ws_reconnect_s": round(ws_state["reconnect_s"] or 0, 3),
    "ws_failed_attempts": ws_state["failed_attempts"],
    "haproxy_marked_down_s": round(down["s"], 3) if down["s"] is not None else None,
}
print("figures " + json.dumps(figures), flush=True)
check(down["s"] is not None and down["s"] < 2.0, f"HAProxy did not mark the gateway down within 2 s")
check(failure_window < 2.0, f"REST failures went on {failure_window:.2f} s after the kill")
print("ok: failures stopped within 2 s; the watcher resumed on another gateway, every window once")
