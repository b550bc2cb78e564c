"""Live runs' figures (issue 21), printed, nothing asserted. Started by benches/live/run.sh
against a fresh `sdsim up`; see that script for the environment it passes.

(1) Latency from a window's XADD to its arrival at the WebSocket watchers of one run, with
    1, 100 and 1,000 watchers, against the floor measured meanwhile: Redis's own XADD to
    XREAD latency with a minimal client (a writer process XADDs timestamped entries the size
    of a window to a scratch stream, a reader process waits in XREAD BLOCK). The run's own
    XADD has no timestamp, so a direct reader (XREAD BLOCK on the run's stream, like the
    gateway's feed) gives each window's reference arrival; a watcher's latency is
    (its arrival - the direct reader's arrival) + the floor. The first term is the gateway's
    share.
(2) Runs one instance carries at real time (speed 1, 10 windows/s each; LIVE_WINDOW): K runs at once for
    growing K, each watched by one WebSocket watcher; per K the windows/s XADDed (from the
    streams' last entry ids) and received by the watchers, how far windows are behind their
    wall-clock schedule (at the watchers, in the streams, in the run threads), the longest gap
    between two windows at a watcher, sdsim's warnings meanwhile, and CPU. Stops after the
    first K whose lag p99 at the watchers passes the limit.

Watchers are raw asyncio protocols around websockets' Sans-I/O ClientProtocol, spread over
several processes; a frame's arrival is stamped in data_received, before any parsing. All
times are time.monotonic() (CLOCK_MONOTONIC, one clock for every process on the machine).
"""

import asyncio
import concurrent.futures
import json
import multiprocessing as mp
import os
import signal
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import redis

BASE = os.environ["LIVE_BASE"]
REDIS_URL = os.environ["LIVE_REDIS_URL"]
PREFIX = os.environ["LIVE_PREFIX"]
SDSIM_PID = int(os.environ["LIVE_SDSIM_PID"])
DESIGN = os.environ["LIVE_DESIGN"]
WORK = os.environ.get("LIVE_WORK", "/tmp")
WATCHERS = [int(x) for x in os.environ.get("LIVE_WATCHERS", "1,100,1000").split(",") if x]
PROCS = int(os.environ.get("LIVE_PROCS", "4"))
SECONDS = float(os.environ.get("LIVE_SECONDS", "15"))
RUNS = [int(x) for x in os.environ.get("LIVE_RUNS", "10,50,100,125,150,200,300,400,600,800").split(",")
        if x]
RATE = float(os.environ["LIVE_RATE"]) if os.environ.get("LIVE_RATE") else None
RUN_SECONDS = float(os.environ.get("LIVE_RUN_SECONDS", "12"))
LAG_LIMIT = float(os.environ.get("LIVE_LAG_LIMIT", "1.0"))
WINDOW = float(os.environ.get("LIVE_WINDOW", "0.1"))
QUIET_WAIT = float(os.environ.get("LIVE_QUIET_WAIT", "30"))
LOG = os.environ.get("LIVE_LOG", "")
PASSWORD = "a long enough password for the bench"


def out(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- REST


def http(method, path, body=None, token=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


def sign_in():
    email = f"live-bench-{uuid.uuid4().hex[:12]}@example.com"
    st, b = http("POST", "/api/auth/register", {
        "email": email, "password": PASSWORD,
        "first_name": "Bench", "last_name": "Live", "company": "sdsim"})
    if st != 201:
        sys.exit(f"register: {st} {b}")
    st, b = http("POST", "/api/auth/login", {"email": email, "password": PASSWORD})
    if st != 200:
        sys.exit(f"login: {st} {b}")
    return b["access_token"]


def design(duration_s):
    with open(DESIGN) as f:
        d = json.load(f)
    d["duration_s"] = duration_s
    if RATE is not None:
        for c in d["components"]:
            if c.get("kind") == "client" and "rate" in c.get("traffic", {}):
                c["traffic"]["rate"] = RATE
    return d


def offered_rate():
    return sum(c.get("traffic", {}).get("rate", 0) for c in design(1)["components"]
               if c.get("kind") == "client")


def start_run(token, d, seed):
    """A run at real time: its id, when its start was asked, and how long the answer took."""
    t = time.monotonic()
    st, b = http("POST", "/api/simulations",
                 {"design": d, "speed": 1, "window_seconds": WINDOW, "seed": seed}, token)
    if st != 201:
        raise RuntimeError(f"start: {st} {b}")
    return b["simulation"]["id"], t, time.monotonic() - t


def stop_run(token, run):
    """202, or what the refusal said."""
    try:
        st, b = http("POST", f"/api/simulations/{run}/stop", {}, token)
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    return st if st == 202 else f"{st} {str(b)[:160]}"


def stream_key(run):
    return f"{PREFIX}simulation:stream:{run}"


def entry_number(entry_id):
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    return int(entry_id.split("-", 1)[0])


# ---------------------------------------------------------------- statistics


def pct(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def ms(x):
    return f"{x * 1000:8.2f}"


# ---------------------------------------------------------------- CPU


def proc_ticks(pid):
    """utime + stime of a process, and of its run threads (named sdsim-run-*)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = int(fields[11]) + int(fields[12])
    runs = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tasks = []
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        if comm.startswith("sdsim-run-"):
            fl = s.rsplit(")", 1)[1].split()
            runs += int(fl[11]) + int(fl[12])
    return total, runs


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v), idle


def processes():
    """pid -> (comm, parent pid, utime + stime) of every process on the machine."""
    out_ = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fl = s.rsplit(")", 1)[1].split()
        out_[int(p)] = (comm, int(fl[1]), int(fl[11]) + int(fl[12]))
    return out_


class Cpu:
    """CPU between two samples, in cores: sdsim (and its run threads), PostgreSQL, Redis,
    this client (this process and its children), and the rest of the machine (other work:
    this machine is shared)."""

    HZ = os.sysconf("SC_CLK_TCK")

    def __init__(self, r):
        self.r = r

    def sample(self):
        return (time.monotonic(), proc_ticks(SDSIM_PID), machine_ticks(), processes())

    def between(self, a, b):
        dt = b[0] - a[0]
        sd = (b[1][0] - a[1][0]) / self.HZ / dt
        rt = (b[1][1] - a[1][1]) / self.HZ / dt
        tot, idle = b[2][0] - a[2][0], b[2][1] - a[2][1]
        machine = (tot - idle) / tot * os.cpu_count() if tot else float("nan")
        pa, pb = a[3], b[3]
        mine = {os.getpid()}
        grew = True
        while grew:
            grew = False
            for pid, (_, ppid, _) in pb.items():
                if ppid in mine and pid not in mine:
                    mine.add(pid)
                    grew = True
        groups = {"postgres": 0, "redis": 0, "client": 0}
        for pid, (comm, _, ticks) in pb.items():
            d = ticks - pa[pid][2] if pid in pa and pa[pid][0] == comm else ticks
            if pid in mine:
                groups["client"] += d
            elif comm.startswith("postgres"):
                groups["postgres"] += d
            elif comm.startswith("redis-server"):
                groups["redis"] += d
        c = {k: v / self.HZ / dt for k, v in groups.items()}
        c.update(sdsim=sd, runs=rt, machine=machine)
        c["other"] = max(0.0, machine - sd - c["postgres"] - c["redis"] - c["client"])
        return c


def cpu_line(c):
    return (f"sdsim {c['sdsim'] * 100:4.0f}% (run threads {c['runs'] * 100:3.0f}%), "
            f"PostgreSQL {c['postgres'] * 100:3.0f}%, Redis {c['redis'] * 100:3.0f}%, "
            f"this client {c['client'] * 100:3.0f}%, other work {c['other'] * 100:3.0f}% "
            f"(machine {c['machine'] * 100:3.0f}% of {os.cpu_count() * 100}%)")


def quiet(cpu, most=0.25):
    """Waits (up to LIVE_QUIET_WAIT s) until other work on the machine uses under `most` of a
    core over 2 s, so figures are not another job's; answers what it saw last."""
    end = time.monotonic() + QUIET_WAIT
    while True:
        a = cpu.sample()
        time.sleep(2.0)
        c = cpu.between(a, cpu.sample())
        if c["other"] < most or time.monotonic() > end:
            return c


# ---------------------------------------------------------------- helper processes


def direct_reader(redis_url, key, path, stop):
    """XREAD BLOCK on the run's stream; writes `number arrival` per entry."""
    r = redis.Redis.from_url(redis_url)
    last = "0-0"
    with open(path, "w") as f:
        while not stop.is_set():
            reply = r.xread({key: last}, count=256, block=500)
            now = time.monotonic()
            for _, entries in reply or []:
                for eid, _ in entries:
                    last = eid
                    f.write(f"{entry_number(eid)} {now}\n")
            f.flush()


def floor_writer(redis_url, key, size, stop):
    """Ten timestamped entries a second, each the size of a window."""
    r = redis.Redis.from_url(redis_url)
    pad = "x" * max(0, size)
    nxt = time.monotonic()
    while not stop.is_set():
        r.xadd(key, {"t": repr(time.monotonic()), "data": pad}, maxlen=1000, approximate=True)
        nxt += WINDOW
        time.sleep(max(0.0, nxt - time.monotonic()))


def floor_reader(redis_url, key, path, stop):
    """XREAD BLOCK on the scratch stream; writes `stamp latency` per entry."""
    r = redis.Redis.from_url(redis_url)
    last = "$"
    with open(path, "w") as f:
        while not stop.is_set():
            reply = r.xread({key: last}, count=256, block=500)
            now = time.monotonic()
            for _, entries in reply or []:
                for eid, fields in entries:
                    last = eid
                    t = float(fields[b"t"])
                    f.write(f"{t} {now - t}\n")
            f.flush()


def read_pairs(path):
    with open(path) as f:
        return [(float(a), float(b)) for a, b in (line.split() for line in f if line.strip())]


# ---------------------------------------------------------------- watchers


class Watcher(asyncio.Protocol):
    """One WebSocket watcher of one run: the handshake, `auth`, then every frame's offset
    with the time its bytes reached the process."""

    def __init__(self, host, port, run, token, since):
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        q = f"?since={since}-0" if since else ""
        self.ws = ClientProtocol(parse_uri(f"ws://{host}:{port}/ws/simulation/{run}{q}"),
                                 max_size=None)
        self.token = token
        self.run = run
        self.arrivals = []  # (offset number, time)
        self.close_code = None
        self.authed = asyncio.get_running_loop().create_future()
        self.partial = None
        self.transport = None
        self.lost = False
        self.busy = 0.0  # seconds spent in data_received

    def flush(self):
        for d in self.ws.data_to_send():
            if d:
                self.transport.write(d)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def connection_made(self, transport):
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data):
        now = time.monotonic()
        from websockets.frames import Opcode
        from websockets.http11 import Response

        self.ws.receive_data(data)
        for ev in self.ws.events_received():
            if isinstance(ev, Response):
                if self.ws.handshake_exc is not None:
                    self._fail(f"handshake: {self.ws.handshake_exc}")
                    return
                self.ws.send_text(json.dumps({"type": "auth", "token": self.token}).encode())
                continue
            op = ev.opcode
            if op is Opcode.TEXT or op is Opcode.CONT:
                head = ev.data[:200] if op is Opcode.TEXT else self.partial
                if not ev.fin:
                    self.partial = head if op is Opcode.CONT else ev.data[:200]
                    continue
                self.partial = None
                self._frame(head, now)
            elif op is Opcode.CLOSE:
                self.close_code = self.ws.close_code
        self.flush()
        self.busy += time.monotonic() - now

    def _frame(self, head, now):
        i = head.find(b'"offset":"')
        if i >= 0:
            j = head.find(b"-", i + 10)
            self.arrivals.append((int(head[i + 10:j]), now))
            return
        if b'"auth_ok"' in head and not self.authed.done():
            self.authed.set_result(True)

    def _fail(self, why):
        if not self.authed.done():
            self.authed.set_exception(RuntimeError(why))
        if self.transport:
            self.transport.close()

    def eof_received(self):
        self.ws.receive_eof()
        self.flush()

    def connection_lost(self, exc):
        self.lost = True
        if not self.authed.done():
            self.authed.set_exception(
                RuntimeError(f"closed before auth_ok (code {self.ws.close_code})"))

    def close(self):
        if self.transport and not self.lost:
            try:
                self.ws.send_close(1000)
                self.flush()
            except Exception:
                pass
            self.transport.close()


def watch_worker(args, ready, stop, results):
    asyncio.run(_watch(args, ready, stop, results))


async def _watch(args, ready, stop, results):
    """args: index, host, port, token, redis url, [(run id, count), ...], live since?"""
    idx, host, port, token, redis_url, plan, live_since, auth_s, parallel = args
    import redis.asyncio as aredis

    loop = asyncio.get_running_loop()
    r = aredis.Redis.from_url(redis_url)
    watchers = []
    errors = []
    sem = asyncio.Semaphore(parallel)

    async def open_one(run):
        async with sem:
            w = None
            try:
                since = 0
                if live_since:
                    # Join at the stream's end: no catch-up burst, only live windows.
                    last = await r.xrevrange(stream_key(run), count=1)
                    since = entry_number(last[0][0]) if last else 0
                w = Watcher(host, port, run, token, since)
                await loop.create_connection(lambda: w, host, port)
                await asyncio.wait_for(w.authed, auth_s)
                watchers.append(w)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{type(e).__name__}: {e}")
                if w is not None:
                    w.close()

    await asyncio.gather(*(open_one(run) for run, n in plan for _ in range(n)))
    ready.put((idx, len(watchers), errors[:3], len(errors)))
    while not stop.is_set():
        await asyncio.sleep(0.05)
    res = [(w.run, w.arrivals, w.close_code, w.busy) for w in watchers]
    for w in watchers:
        w.close()
    await asyncio.sleep(0.2)
    await r.aclose()
    results.put((idx, res))


class Crowd:
    """Watcher processes; `plan` is [(run id, watchers)], spread over the processes."""

    def __init__(self, ctx, token, plan, procs, live_since, auth_s=30.0, parallel=32):
        u = urllib.parse.urlparse(BASE)
        flat = [run for run, n in plan for _ in range(n)]
        procs = max(1, min(procs, len(flat)))
        shares = [flat[i::procs] for i in range(procs)]
        self.ready, self.results, self.stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.procs = []
        for i, share in enumerate(shares):
            counts = {}
            for run in share:
                counts[run] = counts.get(run, 0) + 1
            args = (i, u.hostname, u.port, token, REDIS_URL, list(counts.items()), live_since,
                    auth_s, parallel)
            p = ctx.Process(target=watch_worker, args=(args, self.ready, self.stop, self.results),
                            daemon=True)
            p.start()
            self.procs.append(p)

    def wait_ready(self, timeout=180):
        import queue

        connected, failed, sample = 0, 0, []
        end = time.monotonic() + timeout
        for _ in self.procs:
            while True:
                try:
                    _, n, errs, nerr = self.ready.get(timeout=1)
                    break
                except queue.Empty:
                    dead = [p.exitcode for p in self.procs if p.exitcode not in (None, 0)]
                    if dead or time.monotonic() > end:
                        self.stop.set()
                        raise RuntimeError(f"watcher processes failed (exit codes {dead})")
            connected += n
            failed += nerr
            sample += errs
        return connected, failed, sample

    def finish(self):
        self.stop.set()
        got = []
        for _ in self.procs:
            _, res = self.results.get(timeout=120)
            got += res
        for p in self.procs:
            p.join(timeout=30)
        return got


# ---------------------------------------------------------------- (1) latency


def latency(ctx, token, r, cpu):
    out(f"== (1) XADD -> WebSocket watcher latency, one run (speed 1, a window every {WINDOW:g} s)"
        " ==")
    stop = ctx.Event()
    run, _, _ = start_run(token, design(3600), 1)
    key = stream_key(run)
    direct_path = os.path.join(WORK, "direct.txt")
    floor_path = os.path.join(WORK, "floor.txt")
    helpers = [ctx.Process(target=direct_reader, args=(REDIS_URL, key, direct_path, stop),
                           daemon=True)]
    helpers[0].start()
    # The floor's entries weigh what a window weighs.
    size = 0
    for _ in range(50):
        first = r.xrange(key, count=1)
        if first:
            size = len(first[0][1].get(b"data", b""))
            break
        time.sleep(0.1)
    floor_key = f"{PREFIX}bench:floor"
    helpers.append(ctx.Process(target=floor_reader, args=(REDIS_URL, floor_key, floor_path, stop),
                               daemon=True))
    helpers.append(ctx.Process(target=floor_writer, args=(REDIS_URL, floor_key, size, stop),
                               daemon=True))
    for p in helpers[1:]:
        p.start()
    out(f"run {run}: windows of {size} bytes; floor: a scratch stream, same size, an XADD every "
        f"{WINDOW:g} s")
    rows = []
    try:
        for n in WATCHERS:
            procs = min(PROCS, n)
            q = quiet(cpu)
            out(f"   (before: other work {q['other'] * 100:.0f}% of a core)")
            crowd = Crowd(ctx, token, [(run, n)], procs, live_since=True)
            t_conn = time.monotonic()
            connected, failed, sample = crowd.wait_ready()
            t_ready = time.monotonic()
            t_a = t_ready + 1.0
            c0 = None
            time.sleep(1.0)
            c0 = cpu.sample()
            time.sleep(SECONDS)
            c1 = cpu.sample()
            t_b = time.monotonic()
            time.sleep(3.0)  # the last windows' stragglers (a window not in by then: missing)
            got = crowd.finish()
            direct = {}
            for num, t in read_pairs(direct_path):
                direct.setdefault(int(num), t)
            measured = [num for num, t in direct.items() if t_a <= t <= t_b]
            lo, hi = (min(measured), max(measured)) if measured else (1, 0)
            share, slowest, missing, codes = [], {}, 0, {}
            busy = sum(g[3] for g in got)
            frames = sum(len(g[1]) for g in got)
            per_proc = -(-n // procs)
            for _, arrivals, code, _ in got:
                codes[code] = codes.get(code, 0) + 1
                seen = {}
                for num, t in arrivals:
                    if lo <= num <= hi:
                        seen.setdefault(num, t)
                missing += (hi - lo + 1) - len(seen)
                for num, t in seen.items():
                    d = t - direct[num]
                    share.append(d)
                    slowest[num] = max(slowest.get(num, d), d)
            floor = [lat for stamp, lat in read_pairs(floor_path) if t_a <= stamp <= t_b]
            c = cpu.between(c0, c1)
            rows.append((n, connected, failed, hi - lo + 1, share, list(slowest.values()),
                         floor, missing, c, t_ready - t_conn))
            out(f"-- {n} watcher(s) over {procs} process(es): {connected} connected "
                f"in {t_ready - t_conn:.1f} s, {failed} failed {sample[:1]}; "
                f"windows {lo}..{hi} ({hi - lo + 1}) measured over {SECONDS:.0f} s; "
                f"missing {missing}; closes seen {codes}")
            out(f"   CPU while measured: {cpu_line(c)}")
            cost = busy / frames if frames else float("nan")
            out(f"   client: {cost * 1e6:.0f} us of Python per frame received; with {per_proc} "
                f"watcher(s) a process, the last of them waits ~{per_proc * cost * 1000:.1f} ms for "
                f"the others (client skew, in the share below)")
            report(share, list(slowest.values()), floor)
    finally:
        stop_run(token, run)
        stop.set()
        for p in helpers:
            p.join(timeout=10)
    out("")
    out("summary (1): ms; share = watcher arrival - direct XREAD arrival of the same window;")
    out("             XADD->watcher = floor + share (p50 with p50, p99 with p99)")
    out(f"  {'watchers':>8} {'floor p50':>9} {'floor p99':>9} {'share p50':>9} {'share p99':>9} "
        f"{'total p50':>9} {'total p99':>9} {'ratio p50':>9} {'ratio p99':>9} "
        f"{'all-got p99':>11} {'sdsim CPU':>9} {'client':>6} {'other':>6}")
    for n, _, _, _, share, slow, floor, _, c, _ in rows:
        f50, f99, s50, s99 = pct(floor, 50), pct(floor, 99), pct(share, 50), pct(share, 99)
        out(f"  {n:>8} {ms(f50):>9} {ms(f99):>9} {ms(s50):>9} {ms(s99):>9} "
            f"{ms(f50 + s50):>9} {ms(f99 + s99):>9} {(f50 + s50) / f50:9.1f} "
            f"{(f99 + s99) / f99:9.1f} {ms(f99 + pct(slow, 99)):>11} {c['sdsim'] * 100:8.0f}% "
            f"{c['client'] * 100:5.0f}% {c['other'] * 100:5.0f}%")
    out("  all-got p99: floor p99 + p99 over windows of the time until the last watcher had it.")
    out("  Seed 004's target: under 16 ms from the simulation to the browser. CPU in % of one"
        " core; other: work on this machine that is not the bench's.")
    return rows


def report(share, slowest, floor):
    out(f"   floor  XADD->XREAD (minimal client): p50 {ms(pct(floor, 50))} ms  "
        f"p99 {ms(pct(floor, 99))} ms  ({len(floor)} entries)")
    out(f"   share  watcher - direct reader:      p50 {ms(pct(share, 50))} ms  "
        f"p99 {ms(pct(share, 99))} ms  max {ms(max(share) if share else float('nan'))} ms  "
        f"({len(share)} frames)")
    out(f"   last watcher of a window - direct:   p50 {ms(pct(slowest, 50))} ms  "
        f"p99 {ms(pct(slowest, 99))} ms")


# ---------------------------------------------------------------- (2) capacity


def last_numbers(r, runs):
    pipe = r.pipeline(transaction=False)
    for run in runs:
        pipe.xrevrange(stream_key(run), count=1)
    out_ = {}
    for run, last in zip(runs, pipe.execute()):
        out_[run] = (entry_number(last[0][0]), last[0][1].get(b"type", b"").decode()) \
            if last else (0, "")
    return out_


def capacity(ctx, token, r, cpu):
    out("")
    out(f"== (2) runs at real time on one instance: speed 1, window {WINDOW:g} s "
        f"({1 / WINDOW:g} windows/s each), "
        "one WebSocket watcher per run ==")
    out(f"   lag = wall time since the run's start was asked - {WINDOW:g} s x (window number - 1),"
        f" 0 to {WINDOW:g} s on schedule")
    out("   (at most the start's answer time too high, printed): at the watchers for every window"
        " as it arrives; of")
    out("   the streams from their last entry at the end; of the run threads from their simulated"
        " seconds (GET status).")
    out(f"   Measured for {RUN_SECONDS:.0f} s after a 2 s warm-up; stops after the first K with"
        f" lag p99 at the watchers > {LAG_LIMIT} s.")
    rows = []
    d = design(3600)
    for k in RUNS:
        q = quiet(cpu)
        out(f"   (before: other work {q['other'] * 100:.0f}% of a core)")
        runs, t_start, answer = [], {}, []
        t0s = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futs = [pool.submit(start_run, token, d, 1000 + i) for i in range(k)]
            errs = []
            for f in futs:
                try:
                    run, t, took = f.result()
                    runs.append(run)
                    t_start[run] = t
                    answer.append(took)
                except Exception as e:  # noqa: BLE001
                    errs.append(str(e))
        started_in = time.monotonic() - t0s
        if not runs:
            out(f"-- K={k}: no run started: {errs[:1]}")
            break
        crowd = None
        try:
            if errs:
                out(f"-- K={k}: {len(errs)} starts failed, e.g. {errs[0]}")
            # A watcher not in within 10 s counts as failed (the gateway is starved).
            crowd = Crowd(ctx, token, [(run, 1) for run in runs], PROCS, live_since=False,
                          auth_s=10.0, parallel=64)
            connected, failed, _ = crowd.wait_ready()
            time.sleep(2.0)
            log0 = log_size()
            a = last_numbers(r, runs)
            t0 = time.monotonic()
            c0 = cpu.sample()
            time.sleep(RUN_SECONDS)
            b = last_numbers(r, runs)
            t1 = time.monotonic()
            c1 = cpu.sample()
            threads = run_thread_lags(token, runs, t_start)
            got = crowd.finish()
            crowd = None
            warnings = log_warnings(log0)
        finally:
            if crowd is not None:
                crowd.stop.set()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                stop_codes = list(pool.map(lambda run: stop_run(token, run), runs))
            t_stop = time.monotonic()
        dt = t1 - t0
        streamed = sum(b[run][0] - a[run][0] for run in runs) / dt
        per_run = [(b[run][0] - a[run][0]) / dt for run in runs]
        lag = [(t1 - t_start[run]) - WINDOW * (b[run][0] - 1) for run in runs]
        received = sum(1 for _, arr, _, _ in got for _, t in arr if t0 <= t <= t1) / dt
        e2e_lag, gaps = [], []
        for run, arr, _, _ in got:
            inside = [(num, t) for num, t in arr if t0 <= t <= t1]
            for num, t in inside:
                e2e_lag.append((t - t_start[run]) - WINDOW * (num - 1))
            if len(inside) > 1:
                gaps.append(max(y[1] - x[1] for x, y in zip(inside, inside[1:])))
        ended = sum(1 for run in runs if b[run][1] not in ("", "simulation.window"))
        c = cpu.between(c0, c1)
        behind = e2e_lag if e2e_lag else lag
        rows.append((k, len(runs), streamed, received, per_run, lag, e2e_lag, c, threads, gaps))
        out(f"-- K={k}: {len(runs)} started in {started_in:.1f} s (answers p50 "
            f"{pct(answer, 50) * 1000:.0f} ms, max {max(answer, default=0) * 1000:.0f} ms), "
            f"{connected} watchers ({failed} failed), {ended} ended early")
        out(f"   streamed {streamed:7.0f} windows/s (ideal {len(runs) / WINDOW:.0f}), received by "
            f"watchers {received:7.0f}/s; per run min {min(per_run):.2f}/s median "
            f"{statistics.median(per_run):.2f}/s")
        out(f"   lag, s: at the watchers (every window) p50 {pct(e2e_lag, 50):.3f} p99 "
            f"{pct(e2e_lag, 99):.3f} max {max(e2e_lag, default=float('nan')):.3f}; of the streams at "
            f"the end p50 {pct(lag, 50):.3f} p99 {pct(lag, 99):.3f}; of the run threads (status) "
            f"p50 {pct(threads, 50):.3f} p99 {pct(threads, 99):.3f}")
        out(f"   longest gap between two windows at a watcher: p50 {pct(gaps, 50):.3f} s, "
            f"p99 {pct(gaps, 99):.3f} s (on schedule: {WINDOW:g} s)")
        out(f"   sdsim's warnings meanwhile: {warnings}")
        out(f"   CPU: {cpu_line(c)}")
        left = wait_ended(r, runs)
        refusals = [code for code in stop_codes if code != 202]
        refused = len(refusals)
        out(f"   stopped: {len(runs) - left} ended {time.monotonic() - t_stop:.1f} s after the stops"
            f" were sent ({refused} stops not accepted"
            f"{', ' + str(left) + ' not ended' if left else ''})"
            f"{': ' + str(refusals[0]) if refusals else ''}")
        if pct(behind, 99) > LAG_LIMIT or errs:
            break
    out("")
    out("summary (2): lag in s at the watchers (every window received while measured); CPU in %"
        " of one core")
    out(f"  {'runs':>5} {'windows/s':>9} {'ideal':>6} {'to watchers/s':>13} {'lag p50':>7} "
        f"{'lag p99':>7} {'gap p99':>7} {'sdsim':>6} {'runs':>5} {'PG':>5} {'redis':>6} "
        f"{'client':>6} {'other':>6}")
    for k, n, streamed, received, per_run, lag, e2e, c, threads, gaps in rows:
        out(f"  {n:>5} {streamed:9.0f} {n / WINDOW:6.0f} {received:13.0f} {pct(e2e, 50):7.3f} "
            f"{pct(e2e, 99):7.3f} {pct(gaps, 99):7.3f} {c['sdsim'] * 100:5.0f}% "
            f"{c['runs'] * 100:4.0f}% {c['postgres'] * 100:4.0f}% {c['redis'] * 100:5.0f}% "
            f"{c['client'] * 100:5.0f}% {c['other'] * 100:5.0f}%")
    return rows


def run_thread_lags(token, runs, t_start):
    """How far each run's own clock (GET status: simulated seconds) is behind real time."""
    def one(run):
        try:
            st, b = http("GET", f"/api/simulations/{run}", token=token, timeout=10)
        except OSError:
            return None
        t = time.monotonic()
        if st != 200:
            return None
        return (t - t_start[run]) - (b["simulation"]["simulated_seconds"] - WINDOW)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return [x for x in pool.map(one, runs) if x is not None]


def log_size():
    try:
        return os.path.getsize(LOG)
    except OSError:
        return 0


def log_warnings(since):
    """sdsim's warnings and errors written since offset `since` of its log, by kind."""
    try:
        with open(LOG, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    kinds = {}
    for line in text.splitlines():
        if " WARN " not in line and " ERROR " not in line and "WARN\x1b" not in line \
                and "ERROR\x1b" not in line:
            continue
        if "no connection within" in line:
            k = "PostgreSQL pool waits"
        elif "timed out" in line:
            k = "Redis timeouts"
        else:
            k = "other"
        kinds[k] = kinds.get(k, 0) + 1
    if not kinds:
        return "none"
    return ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))


def wait_ended(r, runs, timeout=60):
    """Waits for the runs' end entries; answers how many did not end in time."""
    end = time.monotonic() + timeout
    while True:
        left = [run for run, (_, kind) in last_numbers(r, runs).items()
                if kind in ("", "simulation.window")]
        if not left or time.monotonic() > end:
            return len(left)
        time.sleep(0.5)


def main():
    # Killed by run.sh's trap: exit normally, so the daemonic helper processes end too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ctx = mp.get_context("spawn")
    r = redis.Redis.from_url(REDIS_URL)
    cpu = Cpu(r)
    out(f"sdsim live bench: {os.cpu_count()} cores shared by the server (sdsim up, PostgreSQL, "
        f"Redis) and this client ({PROCS} watcher processes + helpers); design "
        f"{os.path.basename(DESIGN)} ({offered_rate():g} requests/s simulated per run)")
    token = sign_in()
    if WATCHERS:
        latency(ctx, token, r, cpu)
    if RUNS:
        capacity(ctx, token, r, cpu)


if __name__ == "__main__":
    main()
