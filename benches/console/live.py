"""Prints how fast the console paints a live run (figures, not assertions): the 63-component
`large_platform` template streaming ten windows a second (1 s windows at 10x), watched in the
editor's run dock; from each window's arrival on the socket to the DOM holding it, to the end
of the rendering of the frame that paints it, and to the start of the next frame (an upper
bound), p50 and p95, and the share of windows painted.

Goal (issue 23): p95 under 50 ms and none dropped. SDSIM_CONSOLE_BENCH_CPU_SLOWDOWN=N has
Chromium run the page N times slower (DevTools' CPU throttling): the figures of a slower or
busier machine, comparable from one run to the next."""

import json
import os
import statistics
import urllib.request
import uuid

from playwright.sync_api import sync_playwright

BASE = os.environ["SDSIM_CONSOLE_URL"]
CHROMIUM = os.environ.get("SDSIM_CHROMIUM", "/usr/bin/chromium")
DURATION = int(os.environ.get("SDSIM_CONSOLE_BENCH_LIVE_S", "60"))
SLOWDOWN = float(os.environ.get("SDSIM_CONSOLE_BENCH_CPU_SLOWDOWN", "1"))
PASSWORD = "a long enough passphrase 42"


def call(method, path, body=None, token=None, headers=None):
    req = urllib.request.Request(BASE + path, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(req, data) as r:
        return json.loads(r.read() or b"null")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def main():
    email = f"bench-live-{uuid.uuid4().hex[:8]}@example.com"
    call("POST", "/api/auth/register", {"email": email, "password": PASSWORD, "first_name": "B", "last_name": "Ench"})
    token = call("POST", "/api/auth/login", {"email": email, "password": PASSWORD})["access_token"]
    project = call("POST", "/api/projects", {"name": "live bench", "template_id": "large-platform"}, token=token)["project"]
    design = dict(project["design"], duration_s=DURATION, window_s=1)
    project = call("PATCH", f"/api/projects/{project['id']}", {"design": design}, token=token,
                   headers={"If-Match": f'"{project["version"]}"'})["project"]
    n = len(design["components"])

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"] + os.environ.get("SDSIM_CONSOLE_BENCH_ARGS", "").split())
        ctx = browser.new_context(base_url=BASE, viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        if SLOWDOWN > 1:
            # Kept for the whole run: the throttling lasts as long as its DevTools session.
            devtools = ctx.new_cdp_session(page)
            devtools.send("Emulation.setCPUThrottlingRate", {"rate": SLOWDOWN})
        page.goto("/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/projects")
        page.goto(f"/projects/{project['id']}")
        page.wait_for_selector(".editor[data-ready='1']")
        page.click("#open-run")
        page.select_option("#run-speed", "10")
        page.fill("#run-seed", "1")
        page.click("#run-start")
        page.wait_for_selector("#run-dock[data-status=completed]", timeout=(DURATION / 10 + 60) * 1000)
        page.wait_for_timeout(300)
        s = page.evaluate("window.sdsimDebug.liveStats()")
        if os.environ.get("SDSIM_CONSOLE_BENCH_SHOT"):
            page.screenshot(path=os.environ["SDSIM_CONSOLE_BENCH_SHOT"])
        browser.close()

    dom, painted, frame = s["latencies"], s["paintLatencies"], s["frameLatencies"]
    print(f"large_platform: {n} components, {DURATION} windows of 1 s at 10x (ten windows a second), in the editor's run dock"
          + (f", the CPU {SLOWDOWN:g}x slower" if SLOWDOWN > 1 else ""))
    print(f"  windows received {s['received']}, painted {s['painted']} ({100 * s['painted'] / max(1, s['received']):.0f}%), "
          f"in {s['frames']} frames; expected {DURATION}; reconnects {s['reconnects']}, gaps {s['gaps']}")
    print(f"  arrival to DOM updated:    p50 {pct(dom, 50):.1f} ms, p95 {pct(dom, 95):.1f} ms, max {max(dom):.1f} ms")
    print(f"  arrival to the frame painted (a task after its rendering): p50 {pct(painted, 50):.1f} ms, "
          f"p95 {pct(painted, 95):.1f} ms, max {max(painted):.1f} ms (mean {statistics.mean(painted):.1f})")
    print(f"  arrival to the start of the next frame (upper bound): p50 {pct(frame, 50):.1f} ms, p95 {pct(frame, 95):.1f} ms, "
          f"max {max(frame):.1f} ms")
    work = s["work"]
    print(f"  the page's work per painted frame (charts, canvas, panel): p50 {pct(work, 50):.1f} ms, p95 {pct(work, 95):.1f} ms")
    print("goal: p95 under 50 ms, none dropped")


if __name__ == "__main__":
    main()
