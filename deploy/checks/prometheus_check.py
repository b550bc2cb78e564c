"""Rules and dashboards against a real Prometheus scraping a live sdsim (and HAProxy).

    python prometheus_check.py startup <sdsim /metrics bases, comma-separated>
        before any traffic: every counter and gauge named in a rule or a dashboard is
        exported already

    python prometheus_check.py drive <gateway base> <admin base>
        drives traffic that makes the event-born series appear (sign-up, logins, a run
        watched to its end, a supervised child crashed on purpose)
    python prometheus_check.py check <prometheus base>
        waits for scrapes and rule evaluations, then asserts:
        - every metric named in a rule or a dashboard query is in Prometheus (names listed in
          deploy/checks/metrics-absent-until-event.txt may be missing, with a warning, as
          long as actors/runtime/src/metrics.rs still declares them; SDSIM_METRICS_STRICT=1
          makes them failures too);
        - every recorded name a query uses is defined by a recording rule;
        - every rule evaluates without error, and every dashboard query runs.
"""

import glob
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROM_DIR = os.path.join(ROOT, "deploy", "prometheus")
RULE_FILES = [os.path.join(PROM_DIR, "recording.yml"), os.path.join(PROM_DIR, "alerts.yml")]
DASHBOARDS = sorted(glob.glob(os.path.join(ROOT, "deploy", "grafana", "dashboards", "*.json")))
ALLOW = os.path.join(ROOT, "deploy", "checks", "metrics-absent-until-event.txt")
BUILTIN = {"up", "ALERTS", "ALERTS_FOR_STATE"}
NAME = re.compile(r"\b((?:sdsim|haproxy)_[A-Za-z0-9_]+|sdsim:[A-Za-z0-9_:]+|up|ALERTS)\b")


def http(method, url, body=None, token=None, timeout=10):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def drive(base, admin):
    from websockets.sync.client import connect

    email = f"prom-{os.getpid()}-{int(time.time())}@example.com"
    pw = "a long enough password"
    st, b = http("POST", base + "/api/auth/register", {"email": email, "password": pw, "first_name": "A", "last_name": "B"})
    assert st == 201, (st, b)
    st, b = http("POST", base + "/api/auth/login", {"email": email, "password": pw})
    assert st == 200, (st, b)
    token = json.loads(b)["access_token"]
    assert http("POST", base + "/api/auth/login", {"email": email, "password": "wrong password"})[0] == 401
    assert http("GET", base + "/api/auth/profile", token=token)[0] == 200
    assert http("GET", base + "/api/projects", token=token)[0] == 200
    with open(os.path.join(ROOT, "engine/templates/read_heavy_api_with_cache.json")) as f:
        design = json.load(f)
    design["duration_s"] = 5
    design["window_s"] = 1
    st, b = http("POST", base + "/api/simulations", {"design": design, "seed": 1}, token=token)
    assert st == 201, (st, b)
    run = json.loads(b)["simulation"]["id"]
    ws_base = base.replace("http://", "ws://")
    with connect(f"{ws_base}/ws/simulation/{run}", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        frames = 0
        try:
            while True:
                json.loads(ws.recv(timeout=20))
                frames += 1
        except Exception:
            pass
    assert frames >= 2, frames
    with connect(f"{ws_base}/ws/notifications", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(ws.recv(timeout=5))["type"] == "auth_ok"
    # One supervised child crashed on purpose (admin.fault_injection): a restart is counted.
    st, b = http("POST", admin + "/admin/supervision/auth/mailer/crash")
    assert st in (200, 202), (st, b)
    print(f"traffic driven: run {run} watched ({frames} frames), one crash drill")


def startup(targets):
    """Before any traffic: every counter and gauge a rule or dashboard names is exported
    already (at zero for the label sets the process knows), so rate() and absent() tell the
    truth from the first scrape. Histograms (_bucket, _sum, _count) appear with their first
    observation and are checked after the traffic."""
    refs, _, _ = referenced()
    page = ""
    for t in targets:
        st, b = http("GET", t.rstrip("/") + "/metrics")
        assert st == 200, (t, st)
        page += b.decode()
    exported = {line.split("{")[0].split(" ")[0] for line in page.splitlines() if line and not line.startswith("#")}
    wanted = sorted(n for n in refs if n.startswith("sdsim_") and not re.search(r"_(bucket|sum|count)$", n))
    missing = [n for n in wanted if n not in exported]
    if missing:
        for n in missing:
            print(f"FAIL: {n} is not exported at start-up (used in {', '.join(sorted(set(refs[n]))[:3])})", file=sys.stderr)
        sys.exit(1)
    print(f"start-up: the {len(wanted)} counters and gauges of the rules and dashboards are exported before any traffic")


def prom(base, path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    st, b = http("GET", url)
    doc = json.loads(b)
    return st, doc


def referenced():
    """{name: [where]} of every metric and recorded name in rules and dashboards."""
    refs, records = {}, set()
    for path in RULE_FILES:
        for g in yaml.safe_load(open(path))["groups"]:
            for r in g["rules"]:
                where = f"{os.path.basename(path)}:{r.get('record') or r.get('alert')}"
                if "record" in r:
                    records.add(r["record"])
                for n in NAME.findall(r["expr"]):
                    refs.setdefault(n, []).append(where)
    queries = []
    for path in DASHBOARDS:
        d = json.load(open(path))
        for p in d["panels"]:
            for t in p.get("targets", []):
                where = f"{os.path.basename(path)}:{p['title']}"
                queries.append((where, t["expr"]))
                for n in NAME.findall(t["expr"]):
                    refs.setdefault(n, []).append(where)
    return refs, records, queries


def check(base):
    refs, records, queries = referenced()
    # Scrapes: every target up, twice at least (rates need two samples).
    deadline = time.time() + 30
    while True:
        _, doc = prom(base, "/api/v1/targets")
        active = doc["data"]["activeTargets"]
        if active and all(t["health"] == "up" for t in active):
            break
        if time.time() > deadline:
            sys.exit("targets not up: " + json.dumps([(t["scrapeUrl"], t["health"], t["lastError"]) for t in active]))
        time.sleep(0.5)
    print(f"{len(active)} targets up: " + ", ".join(sorted({t['labels']['job'] for t in active})))
    time.sleep(3)
    # Rules: every one evaluated at least once, none with an error.
    deadline = time.time() + 20
    while True:
        _, doc = prom(base, "/api/v1/rules")
        rules = [r for g in doc["data"]["groups"] for r in g["rules"]]
        pending = [r["name"] for r in rules if r.get("lastEvaluation", "").startswith("0001")]
        if rules and not pending:
            break
        if time.time() > deadline:
            sys.exit(f"rules never evaluated: {pending}")
        time.sleep(0.5)
    bad = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok" or r.get("lastError")]
    names_expected = {r["name"] for path in RULE_FILES for g in yaml.safe_load(open(path))["groups"]
                      for r in [dict(name=x.get("record") or x.get("alert")) for x in g["rules"]]}
    missing_rules = names_expected - {r["name"] for r in rules}
    failures = []
    if bad:
        failures.append(f"rules with errors: {bad}")
    if missing_rules:
        failures.append(f"rules not loaded: {sorted(missing_rules)}")
    print(f"{len(rules)} rules evaluate without error")

    _, doc = prom(base, "/api/v1/label/__name__/values")
    present = set(doc["data"])
    allowed = set()
    if os.path.exists(ALLOW):
        allowed = {l.split("#")[0].strip() for l in open(ALLOW)} - {""}
    declared = open(os.path.join(ROOT, "actors", "runtime", "src", "metrics.rs")).read()
    strict = os.environ.get("SDSIM_METRICS_STRICT") == "1"
    warned, now_present = [], []
    for name, where in sorted(refs.items()):
        if name in BUILTIN:
            continue
        if name.startswith("sdsim:"):
            if name not in records:
                failures.append(f"{name} is no recording rule (used in {where[0]})")
            continue
        if name in present:
            base_name = re.sub(r"_(bucket|count|sum)$", "", name)
            if base_name in allowed or name in allowed:
                now_present.append(base_name)
            continue
        base_name = re.sub(r"_(bucket|count|sum)$", "", name)
        if not strict and (base_name in allowed) and f'"{base_name}"' in declared:
            warned.append(name)
            continue
        failures.append(f"{name} is not exported (used in {', '.join(sorted(set(where))[:3])})")
    if warned:
        print("WARN: not exported until their first event (listed in "
              f"{os.path.relpath(ALLOW, ROOT)}; declared in metrics.rs): {', '.join(warned)}")
    if now_present:
        print("note: listed as absent until an event but exported now (remove from the list): "
              + ", ".join(sorted(set(now_present))))
    # Dashboard queries: each one runs.
    for where, expr in queries:
        st, doc = prom(base, "/api/v1/query", query=expr)
        if doc.get("status") != "success":
            failures.append(f"{where}: {expr}: {doc.get('error')}")
    print(f"{len(queries)} dashboard queries run; {len([n for n in refs if n not in BUILTIN])} names checked")
    if failures:
        for f in failures:
            print("FAIL: " + f, file=sys.stderr)
        sys.exit(1)
    print("ok: every metric of the rules and dashboards exists; every rule evaluates")


if __name__ == "__main__":
    if sys.argv[1] == "startup":
        startup(sys.argv[2].split(","))
    elif sys.argv[1] == "drive":
        drive(sys.argv[2], sys.argv[3])
    else:
        check(sys.argv[2])
