"""Prints the console's asset sizes and its time to interactive (figures, not assertions)."""

import gzip
import json
import os
import statistics
import urllib.request
import uuid
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = os.environ["SDSIM_CONSOLE_URL"]
WEB = Path(os.environ["SDSIM_CONSOLE_WEB"])
CHROMIUM = os.environ.get("SDSIM_CHROMIUM", "/usr/bin/chromium")
RUNS = int(os.environ.get("SDSIM_CONSOLE_BENCH_RUNS", "7"))
PASSWORD = "a long enough passphrase 42"


def call(method, path, body=None, token=None):
    req = urllib.request.Request(BASE + path, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(req, data) as r:
        return json.loads(r.read() or b"null")


def kb(n):
    return f"{n / 1024:.1f} KB"


def main():
    # Every file of the page, gzip -9 (an upper bound: views load only when needed).
    files = [f for f in WEB.rglob("*") if f.is_file()]
    raw = sum(f.stat().st_size for f in files)
    gz = sum(len(gzip.compress(f.read_bytes(), 9)) for f in files)
    print(f"console/web: {len(files)} files, {kb(raw)} raw, {kb(gz)} gzip -9 (every file)")

    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    call("POST", "/api/auth/register", {"email": email, "password": PASSWORD, "first_name": "B", "last_name": "Ench"})
    token = call("POST", "/api/auth/login", {"email": email, "password": PASSWORD})["access_token"]
    templates = call("GET", "/api/templates", token=token)["templates"]
    tpl = next((t for t in templates if "three" in t["id"] or "Three" in t["name"]), templates[0])
    project = call("POST", "/api/projects", {"name": "bench", "template_id": tpl["id"]}, token=token)["project"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])

        # Cold loads of the sign-in page: bytes on the wire and time until it is usable.
        login_tti, wire = [], {}
        for i in range(RUNS):
            ctx = browser.new_context(base_url=BASE)
            page = ctx.new_page()
            sizes = {}
            page.on("requestfinished", lambda r, s=sizes: s.__setitem__(r.url, r.sizes()["responseBodySize"])
                    if "/api/" not in r.url else None)
            page.goto("/login")
            page.wait_for_selector('body[data-ready="1"]')
            login_tti.append(page.evaluate("performance.now()"))
            if i == 0:
                wire = dict(sizes)
            ctx.close()
        print(f"sign-in page, cold: {len(wire)} requests, {kb(sum(wire.values()))} on the wire (compressed by the gateway)")
        print(f"  time to interactive (navigation start to the form ready), median of {RUNS}: "
              f"{statistics.median(login_tti):.0f} ms (min {min(login_tti):.0f}, max {max(login_tti):.0f})")

        # The editor of a five-component template, signed in, cache disabled: until the canvas
        # is drawn and the first validation and analytic preview have come back.
        ctx = browser.new_context(base_url=BASE)
        page = ctx.new_page()
        page.goto("/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/projects")
        cdp = ctx.new_cdp_session(page)
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        editor_tti, drawn, wire = [], [], {}
        for i in range(RUNS):
            sizes = {}
            handler = lambda r, s=sizes: s.__setitem__(r.url, r.sizes()["responseBodySize"]) if "/api/" not in r.url else None
            page.on("requestfinished", handler)
            page.goto(f"/projects/{project['id']}")
            page.wait_for_selector(".editor[data-ready='1']")
            drawn.append(page.evaluate("performance.now()"))
            page.wait_for_selector("#problems-bar.good, #problems-bar.bad")
            editor_tti.append(page.evaluate("performance.now()"))
            page.remove_listener("requestfinished", handler)
            if i == 0:
                wire = dict(sizes)
        print(f"editor, signed in, no cache: {len(wire)} requests, {kb(sum(wire.values()))} of page assets on the wire")
        print(f"  canvas drawn, median of {RUNS}: {statistics.median(drawn):.0f} ms; with validation and preview: "
              f"{statistics.median(editor_tti):.0f} ms (min {min(editor_tti):.0f}, max {max(editor_tti):.0f})")
        for url, n in sorted(wire.items(), key=lambda x: -x[1])[:6]:
            print(f"    {kb(n):>9}  {url.replace(BASE, '')}")
        ctx.close()
        browser.close()
    print("goals: under 500 KB compressed, under 1000 ms")


if __name__ == "__main__":
    main()
