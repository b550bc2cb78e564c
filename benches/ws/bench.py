"""The gateway at scale (issue 28), printed, nothing asserted. Started by benches/ws/run.sh
with a fresh `sdsim up`, the Node.js peer (node/server.js) and the floor (floor.c) running;
see run.sh for the environment it passes.

(1) Idle memory per authenticated idle WebSocket on /ws/notifications: RSS (VmRSS of
    /proc/<pid>/status) of the server before and after opening WS_IDLE connections (one user,
    each authenticated with {"type":"auth","token":...} and answered with auth_ok), then
    WS_QUIET seconds of quiet. sdsim first, then the Node peer, with the same client.
(2) Fan-out: WS_FANOUT connections stay open to each server (the rest are closed), and as
    many are opened to the floor. Events are published on Redis to each server in turn, on
    sdsim's `<prefix>system:announcements`, the Node peer's and the floor's channels, one
    publish every WS_GAP seconds, WS_EVENTS to each. Every event is an envelope
    (protocols/src/events.rs) whose data carries its sequence number and CLOCK_MONOTONIC time
    of publication. Each client records, for every frame, when its bytes reached the client's
    socket (the kernel's receive timestamp, SO_TIMESTAMPNS) and when the client read them.
    Delivery latency is publish -> socket arrival; messages/s = all deliveries / the sum over
    events of (last arrival - publish). CPU per delivery = a server's CPU time over the step
    (pings included) / its deliveries.

The client (client.c, WS_CLIENT_PROCS processes, one epoll loop each) spreads its
connections over WS_SOURCES loopback source addresses (127.0.0.1, 127.0.0.2, ...).
"""

import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import redis

BASE = os.environ["WS_BASE"]
SDSIM_PORT = int(os.environ["WS_SDSIM_PORT"])
SDSIM_PID = int(os.environ["WS_SDSIM_PID"])
NODE_PORT = int(os.environ["WS_NODE_PORT"])
NODE_PID = int(os.environ["WS_NODE_PID"])
REDIS_URL = os.environ["WS_REDIS_URL"]
PREFIX = os.environ["WS_PREFIX"]
NODE_CHANNEL = os.environ["WS_NODE_CHANNEL"]
CLIENT = os.environ["WS_CLIENT"]
WORK = os.environ.get("WS_WORK", "/tmp")
LOG = os.environ.get("WS_LOG", "")
IDLE = int(os.environ.get("WS_IDLE", "18000"))
FANOUT = int(os.environ.get("WS_FANOUT", "10000"))
EVENTS = int(os.environ.get("WS_EVENTS", "20"))
GAP = float(os.environ.get("WS_GAP", "0.5"))
QUIET = float(os.environ.get("WS_QUIET", "3"))
QUIET_WAIT = float(os.environ.get("WS_QUIET_WAIT", "30"))
PROCS = int(os.environ.get("WS_CLIENT_PROCS", "2"))
SOURCES = int(os.environ.get("WS_SOURCES", "8"))
CONCURRENCY = int(os.environ.get("WS_CONCURRENCY", "256"))
OPEN_TIMEOUT = float(os.environ.get("WS_OPEN_TIMEOUT", "120"))
PASSWORD = "a long enough password for the bench"
NODE_SEQ = 1_000_000  # the Node peer's events are numbered from here
FLOOR_SEQ = 2_000_000  # and the floor's from here
FLOOR_PORT = int(os.environ.get("WS_FLOOR_PORT") or 0)
FLOOR_PID = int(os.environ.get("WS_FLOOR_PID") or 0)
FLOOR_CHANNEL = os.environ.get("WS_FLOOR_CHANNEL", "")
HZ = os.sysconf("SC_CLK_TCK")


def out(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- sdsim


def http(method, path, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def sign_in():
    email = f"ws-bench-{uuid.uuid4().hex[:12]}@example.com"
    st, b = http("POST", "/api/auth/register", {
        "email": email, "password": PASSWORD,
        "first_name": "Bench", "last_name": "Ws", "company": "sdsim"})
    if st != 201:
        sys.exit(f"register: {st} {b}")
    st, b = http("POST", "/api/auth/login", {"email": email, "password": PASSWORD})
    if st != 200:
        sys.exit(f"login: {st} {b}")
    return b["access_token"]


class LogWatch:
    """sdsim's WARN and ERROR lines since the last look."""

    def __init__(self, path):
        self.path = path
        self.at = os.path.getsize(path) if path and os.path.exists(path) else 0

    def since(self):
        if not self.path or not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            f.seek(self.at)
            raw = f.read()
        self.at += len(raw)
        text = re.sub(r"\x1b\[[0-9;]*m", "", raw.decode(errors="replace"))
        return [ln for ln in text.splitlines() if re.search(r" (WARN|ERROR) ", ln)]


def show_log(lines, what):
    if not lines:
        out(f"  sdsim's log during {what}: no warnings or errors")
        return
    out(f"  sdsim's log during {what}: {len(lines)} warnings and errors, most frequent:")
    counts = {}
    for ln in lines:
        key = re.sub(r"^\S+\s+", "", ln)
        key = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", key)
        key = re.sub(r"\d+(\.\d+)?", "N", key)[:200]
        counts[key] = counts.get(key, 0) + 1
    for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:6]:
        out(f"    {v:6d} x {k}")


# ---------------------------------------------------------------- processes


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def threads(pid):
    """"comm/tid" -> utime + stime of each of the process's threads."""
    by = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return by
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fl = st.rsplit(")", 1)[1].split()
        by[f"{comm}/{t}"] = int(fl[11]) + int(fl[12])
    return by


def ticks(pid, which=(11, 12)):
    """utime + stime of a process (which=(11,) for utime alone, (12,) for stime)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fl = f.read().rsplit(")", 1)[1].split()
        return sum(int(fl[i]) for i in which)
    except OSError:
        return 0


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def redis_pids():
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip().startswith("redis-server"):
                        found.append(int(p))
            except OSError:
                pass
    return found


class Target:
    """A server of the fan-out: its name, port, process, channel and event numbers."""

    def __init__(self, key, name, port, pid, channel, base):
        self.key, self.name, self.port, self.pid = key, name, port, pid
        self.channel, self.base = channel, base
        self.open = 0


class Cpu:
    """CPU seconds between two samples: each server (user + system, and system alone), the
    clients, Redis, and the rest of the machine (other work: this machine is shared)."""

    def __init__(self, clients, targets):
        self.clients = [c.p.pid for c in clients]
        self.redis = redis_pids()
        self.targets = targets

    def sample(self):
        return (time.monotonic(), machine_ticks(),
                sum(ticks(p) for p in self.clients), sum(ticks(p) for p in self.redis),
                [(ticks(t.pid), ticks(t.pid, (12,))) for t in self.targets])

    def between(self, a, b):
        c = {"wall": b[0] - a[0]}
        tot, idle = b[1][0] - a[1][0], b[1][1] - a[1][1]
        c["machine"] = (tot - idle) / tot * os.cpu_count() * c["wall"] if tot else 0.0
        c["client"] = (b[2] - a[2]) / HZ
        c["redis"] = (b[3] - a[3]) / HZ
        known = c["client"] + c["redis"]
        for t, (ta, sa), (tb, sb) in zip(self.targets, a[4], b[4]):
            c[t.key] = (tb - ta) / HZ
            c[t.key + "_sys"] = (sb - sa) / HZ
            known += c[t.key]
        c["other"] = max(0.0, c["machine"] - known)
        return c

    def quiet(self, wait, most=0.25):
        """Waits (up to `wait` s) until other work uses under `most` of a core over 2 s."""
        end = time.monotonic() + wait
        while True:
            a = self.sample()
            time.sleep(2.0)
            c = self.between(a, self.sample())
            if c["other"] / c["wall"] < most or time.monotonic() > end:
                return c


def open_files_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return line.split()[3]
    return "?"


class Client:
    """One client process (client.c) and its command pipe."""

    def __init__(self, token, index):
        self.p = subprocess.Popen(
            [CLIENT, "/ws/notifications", token, str(SOURCES), str(index)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def answer(self):
        lines = []
        while True:
            ln = self.p.stdout.readline()
            if not ln:
                raise RuntimeError(f"client {self.p.pid} exited ({self.p.poll()})")
            ln = ln.rstrip("\n")
            if ln == "end":
                return lines
            lines.append(ln)


def all_do(clients, lines):
    """Sends each client its command at once and collects the answers."""
    for c, ln in zip(clients, lines):
        c.send(ln)
    return [c.answer() for c in clients]


def split(n, k):
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def merge_errs(answers):
    errs = {}
    for a in answers:
        for ln in a:
            if ln.startswith("err "):
                _, count, msg = ln.split(" ", 2)
                errs[msg] = errs.get(msg, 0) + int(count)
    return errs


def open_conns(clients, port, n):
    t = time.monotonic()
    ans = all_do(clients, [f"open {port} {k} {max(1, CONCURRENCY // len(clients))} {OPEN_TIMEOUT}"
                           for k in split(n, len(clients))])
    dt = time.monotonic() - t
    ready = failed = pending = 0
    for a in ans:
        m = re.match(r"opened ready=(\d+) failed=(\d+) pending=(\d+)", a[0])
        ready += int(m[1])
        failed += int(m[2])
        pending += int(m[3])
    return ready, failed + pending, merge_errs(ans), dt


def count(clients, port):
    ans = all_do(clients, ["count"] * len(clients))
    ready = lost = 0
    for a in ans:
        for ln in a:
            m = re.match(rf"count {port} ready=(\d+) lost=(\d+)", ln)
            if m:
                ready += int(m[1])
                lost += int(m[2])
    return ready, lost, merge_errs(ans)


def close_conns(clients, port, n):
    ans = all_do(clients, [f"close {port} {k}" for k in split(n, len(clients))])
    return sum(int(re.match(r"closed n=(\d+)", a[0])[1]) for a in ans)


def show_errs(errs, indent="    "):
    for msg, k in sorted(errs.items(), key=lambda kv: -kv[1])[:8]:
        out(f"{indent}{k:6d} x {msg}")


# ---------------------------------------------------------------- statistics


def pct(xs, p):
    """xs sorted."""
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def fmt(n):
    return f"{n:,.0f}"


# ---------------------------------------------------------------- steps


def idle_memory(clients, name, pid, port, logw):
    time.sleep(QUIET)
    before = rss_kib(pid)
    anon_before = rss_anon_kib(pid)
    ready, failed, errs, dt = open_conns(clients, port, IDLE)
    out(f"  {name}: {fmt(ready)} of {fmt(IDLE)} connections authenticated in {dt:.1f} s "
        f"({ready / dt:,.0f}/s), {fmt(failed)} failed")
    show_errs(errs)
    time.sleep(QUIET)
    after = rss_kib(pid)
    anon_after = rss_anon_kib(pid)
    still, lost, lerrs = count(clients, port)
    if lost:
        out(f"  {name}: {fmt(lost)} ready connections were closed meanwhile:")
        show_errs(lerrs)
    per = (after - before) / ready if ready else float("nan")
    out(f"  {name}: RSS {before / 1024:,.1f} MiB before, {after / 1024:,.1f} MiB after "
        f"{QUIET:g} s of quiet with {fmt(still)} open: {per:.2f} KiB per connection "
        f"(anonymous memory alone: {(anon_after - anon_before) / max(1, ready):.2f} KiB)")
    if logw:
        show_log(logw.since(), f"{name}'s idle step")
    return {"ready": ready, "open": still, "before": before, "after": after, "per": per,
            "failed": failed}


def fan_out(clients, r, targets, logw):
    """Events to each target in turn, one publish every GAP s; returns per-target results."""
    pubs = {}
    meter = Cpu(clients, targets)
    q = meter.quiet(QUIET_WAIT)
    out(f"  other work on the machine before the step: {q['other'] / q['wall'] * 100:.0f}% "
        f"of a core")
    c0 = meter.sample()
    th0 = threads(SDSIM_PID)
    nxt = time.monotonic()
    for i in range(EVENTS):
        for t in targets:
            seq = t.base + i
            time.sleep(max(0.0, nxt - time.monotonic()))
            now = time.monotonic_ns()
            env = {"type": "system.announcement", "id": str(uuid.uuid4()), "source": "ws-bench",
                   "occurred_at": "2026-01-01T00:00:00Z",
                   "data": {"seq": seq, "t": now, "message": "bench announcement"}}
            pubs[seq] = now
            r.publish(t.channel, json.dumps(env))
            nxt += GAP
    time.sleep(max(2.0, GAP * 2))
    cpu = meter.between(c0, meter.sample())
    th1 = threads(SDSIM_PID)
    by = sorted(((v - th0.get(k, 0)) / HZ, k) for k, v in th1.items())
    out("  sdsim's busiest threads over the step: " + ", ".join(
        f"{k} {v:.2f} s" for v, k in reversed(by[-6:]) if v > 0))

    recs = []
    for i, c in enumerate(clients):
        path = os.path.join(WORK, f"records-{i}.bin")
        c.send(f"dump {path}")
        c.answer()
        with open(path, "rb") as f:
            recs.extend(struct.iter_unpack("<iiqq", f.read()))
    by_seq = {}
    for seq, _port, t_read, t_kernel in recs:
        if seq in pubs:
            by_seq.setdefault(seq, []).append((t_kernel or t_read, t_read))
    res = {}
    for t in targets:
        lat, lat_read, waits, rates, windows = [], [], [], [], []
        deliveries = short = overlaps = 0
        for i in range(EVENTS):
            seq = t.base + i
            got = by_seq.get(seq, [])
            t0 = pubs[seq]
            deliveries += len(got)
            short += max(0, t.open - len(got))
            if not got:
                continue
            window = (max(k for k, _ in got) - t0) / 1e9
            windows.append(window)
            rates.append(len(got) / window if window > 0 else float("nan"))
            if window > GAP:
                overlaps += 1
            for k, rd in got:
                lat.append((k - t0) / 1e9)
                lat_read.append((rd - t0) / 1e9)
                waits.append((rd - k) / 1e9)
        for xs in (lat, lat_read, waits, rates, windows):
            xs.sort()
        nan = float("nan")
        res[t.key] = {
            "deliveries": deliveries, "short": short, "overlaps": overlaps,
            "rate": deliveries / sum(windows) if windows else nan,
            "rate_p50": pct(rates, 50), "rate_min": rates[0] if rates else nan,
            "p50": pct(lat, 50), "p99": pct(lat, 99), "max": lat[-1] if lat else nan,
            "read_p50": pct(lat_read, 50), "read_p99": pct(lat_read, 99),
            "wait_p50": pct(waits, 50), "wait_p99": pct(waits, 99),
            "window_sum": sum(windows), "window_p50": pct(windows, 50),
            "cpu_us": cpu[t.key] / max(1, deliveries) * 1e6,
            "sys_us": cpu[t.key + "_sys"] / max(1, deliveries) * 1e6,
        }
    if logw:
        show_log(logw.since(), "the fan-out step")
    return res, cpu


def main():
    out(f"benches/ws: sdsim pid {SDSIM_PID} (open files {open_files_limit(SDSIM_PID)}), "
        f"Node peer pid {NODE_PID} (open files {open_files_limit(NODE_PID)}), "
        + (f"floor pid {FLOOR_PID}, " if FLOOR_PID else "")
        + f"{PROCS} client processes over {SOURCES} source addresses, {os.cpu_count()} cores")
    targets = [
        Target("sdsim", "sdsim", SDSIM_PORT, SDSIM_PID, f"{PREFIX}system:announcements", 0),
        Target("node", "Node ws", NODE_PORT, NODE_PID, NODE_CHANNEL, NODE_SEQ),
    ]
    if FLOOR_PORT:
        targets.append(Target("floor", "floor", FLOOR_PORT, FLOOR_PID, FLOOR_CHANNEL, FLOOR_SEQ))
    sdt, ndt = targets[0], targets[1]
    token = sign_in()
    r = redis.Redis.from_url(REDIS_URL)
    logw = LogWatch(LOG)
    logw.since()
    clients = [Client(token, i) for i in range(PROCS)]
    try:
        out(f"\n1. Idle memory: {fmt(IDLE)} authenticated idle WebSockets on /ws/notifications, "
            f"one user, RSS after {QUIET:g} s of quiet")
        sd = idle_memory(clients, "sdsim", SDSIM_PID, SDSIM_PORT, logw)
        close_conns(clients, SDSIM_PORT, max(0, sd["open"] - FANOUT))
        nd = idle_memory(clients, "Node ws", NODE_PID, NODE_PORT, None)
        close_conns(clients, NODE_PORT, max(0, nd["open"] - FANOUT))
        if FLOOR_PORT:
            ready, failed, errs, _ = open_conns(clients, FLOOR_PORT, FANOUT)
            if failed:
                out(f"  floor: {fmt(failed)} of {fmt(FANOUT)} connections failed")
                show_errs(errs)
        time.sleep(2)
        for t in targets:
            t.open = count(clients, t.port)[0]

        out(f"\n2. Fan-out: {EVENTS} events to each server, in turn, one publish every "
            f"{GAP:g} s; clients: " + ", ".join(f"{fmt(t.open)} on {t.name}" for t in targets))
        fo, cpu = fan_out(clients, r, targets, logw)
        for t in targets:
            after, _, errs = count(clients, t.port)
            if after != t.open:
                out(f"  {t.name} closed {fmt(t.open - after)} clients during the fan-out:")
                show_errs(errs)
    finally:
        for c in clients:
            try:
                c.send("quit")
            except OSError:
                pass
        for c in clients:
            try:
                c.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                c.p.kill()

    out("")
    for t in targets:
        x = fo[t.key]
        out(f"  {t.name}: {fmt(x['deliveries'])} deliveries of {fmt(EVENTS * t.open)} expected "
            f"({fmt(x['short'])} missing); per event: messages/s p50 {fmt(x['rate_p50'])}, "
            f"slowest event {fmt(x['rate_min'])}/s, publish -> last arrival p50 "
            f"{x['window_p50'] * 1000:.1f} ms"
            + (f"; {x['overlaps']} events still delivering when the next was published"
               if x["overlaps"] else ""))
    wall = cpu["wall"]
    total = sum(fo[t.key]["deliveries"] for t in targets)
    out(f"  CPU over the {wall:.1f} s of the step: " + ", ".join(
        f"{t.name} {cpu[t.key]:.2f} s" for t in targets)
        + f", clients {cpu['client']:.2f} s ({cpu['client'] / max(1, total) * 1e6:.1f} us per "
        f"delivery), Redis {cpu['redis']:.2f} s, other work {cpu['other']:.2f} s; machine "
        f"{cpu['machine']:.1f} s of {wall * os.cpu_count():.1f} s")
    busy = cpu["client"] / max(1e-9, sum(fo[t.key]["window_sum"] for t in targets))
    out("  The client: frames waited in its sockets before it read them (p50 / p99): "
        + ", ".join(f"{t.name} {fo[t.key]['wait_p50'] * 1e3:.2f} / "
                    f"{fo[t.key]['wait_p99'] * 1e3:.2f} ms" for t in targets)
        + "; the latency below stops at the socket and does not count it. The client's CPU "
        f"equals {busy * 100:.0f}% of one core over the delivery windows ({PROCS} processes: "
        f"{PROCS * 100}% would mean it never waited for a frame).")

    s, n = fo["sdsim"], fo["node"]
    fl = fo.get("floor")
    head = "| | sdsim | Node ws |" + (" floor |" if fl else "") + " sdsim / Node |"
    out("\n" + head)
    out("| --- " * (head.count("|") - 1) + "|")

    def row(label, a, b, c, digits=1, ratio=True):
        cells = [f"{a:,.{digits}f}", f"{b:,.{digits}f}"] + ([f"{c:,.{digits}f}"] if fl else [])
        q = f"{a / b:.2f}" if ratio and b else ""
        out(f"| {label} | " + " | ".join(cells) + f" | {q} |")

    out(f"| idle memory, KiB per connection ({fmt(sd['ready'])} / {fmt(nd['ready'])} open) "
        f"| {sd['per']:.2f} | {nd['per']:.2f} |" + (" |" if fl else "")
        + f" {sd['per'] / nd['per']:.2f} |")
    g = (lambda k: fl[k]) if fl else (lambda k: 0)
    row(f"fan-out to {fmt(sdt.open)} / {fmt(ndt.open)}: messages/s (all events)",
        s["rate"], n["rate"], g("rate"), 0)
    row("delivery latency p50, ms", s["p50"] * 1e3, n["p50"] * 1e3, g("p50") * 1e3)
    row("delivery latency p99, ms", s["p99"] * 1e3, n["p99"] * 1e3, g("p99") * 1e3)
    row("delivery latency max, ms", s["max"] * 1e3, n["max"] * 1e3, g("max") * 1e3)
    row("latency to the client's read p99, ms", s["read_p99"] * 1e3, n["read_p99"] * 1e3,
        g("read_p99") * 1e3)
    row("server CPU per delivery, us", s["cpu_us"], n["cpu_us"], g("cpu_us"))
    row("of which in the kernel (stime), us", s["sys_us"], n["sys_us"], g("sys_us"))
    out("")
    if fl:
        out("floor: one C thread writing the frame to each socket in a loop (floor.c): what "
            "this machine and client allow.")
    kb = sd["per"] * 1.024
    out(f"Goals: idle memory <= 10 KB per connection: sdsim {kb:.2f} KB "
        f"({'met' if kb <= 10 else 'not met'}); fan-out >= 3x Node's messages/s at a lower p99: "
        f"{s['rate'] / n['rate']:.2f}x, p99 {s['p99'] * 1e3:.1f} vs {n['p99'] * 1e3:.1f} ms "
        f"({'met' if s['rate'] >= 3 * n['rate'] and s['p99'] < n['p99'] else 'not met'})")


if __name__ == "__main__":
    main()
