"""Runs from the console: start a run of a template at 10x and watch the charts and the
canvas move, pause and resume, crash a component and see it turn red with its errors rising
and the crash on the timeline, lose the network and resume without a gap, read the
bottleneck, download the results and a chart, compare with a second run, and reopen a run
from the history. The steps share one user, one project and build on each other. Last, on
a project of its own, added latency injected during a run raises its p99."""

import json
import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from conftest import api, new_context, register, shot, wait_saved

RUN = uuid.uuid4().hex[:8]
DAVE = f"dave-{RUN}@example.com"
# 120 simulated seconds in 1 s windows: 12 s at 10x.
DURATION = 120
state = {}


@pytest.fixture(scope="module")
def dave(browser):
    ctx = new_context(browser)
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: errors.append(m.text)
        if m.type == "error" and "status of 4" not in m.text and "ERR_INTERNET_DISCONNECTED" not in m.text
        else None,
    )
    register(page, DAVE, first="Dave", last="Cutler")
    yield page
    ctx.close()
    assert not errors, f"errors in the page: {errors}"


def node(page, name):
    return page.locator(f'svg.canvas .node[data-name="{name}"]')


def dock(page):
    return page.locator("#run-dock")


def dock_data(page):
    return page.locator("#run-dock").evaluate("e => ({...e.dataset})")


def points(page, chart):
    return int(page.locator(f"#{chart}").get_attribute("data-points"))


def relaid_out(page, ms):
    """What Chromium marks for layout in the page over `ms` milliseconds, from its
    invalidation tracing: (reason, element) pairs, e.g. ("SVG changed", "text class='node-name'")."""
    cdp = page.context.new_cdp_session(page)
    events, done = [], []
    cdp.on("Tracing.dataCollected", lambda e: events.extend(e["value"]))
    cdp.on("Tracing.tracingComplete", lambda e: done.append(True))
    cdp.send("Tracing.start", {"categories": "disabled-by-default-devtools.timeline.invalidationTracking",
                               "transferMode": "ReportEvents"})
    page.wait_for_timeout(ms)
    cdp.send("Tracing.end")
    while not done:
        page.wait_for_timeout(50)
    cdp.detach()
    return [(e["args"]["data"].get("reason"), e["args"]["data"].get("nodeName") or "")
            for e in events if e.get("name") == "LayoutInvalidationTracking"]


def wait_status(page, status, timeout=30_000):
    expect(dock(page)).to_have_attribute("data-status", status, timeout=timeout)


def test_run_a_template_at_10x_and_watch_it(dave):
    page = dave
    page.goto("/projects")
    page.get_by_role("button", name="New project").click()
    page.get_by_label("Three-tier web app").check()
    page.get_by_label("Name", exact=True).fill(f"Live {RUN}")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}$"))
    state["url"] = page.url
    expect(node(page, "database")).to_be_visible()
    page.locator('#panel input[data-field="design-duration_s"]').fill(str(DURATION))
    wait_saved(page)
    preview_class = node(page, "database").get_attribute("class")

    page.locator("#open-run").click()
    expect(dock(page)).to_be_visible()
    page.locator("#run-speed").select_option("10")
    page.locator("#run-seed").fill("7")
    page.locator("#run-start").click()
    wait_status(page, "running", 10_000)
    expect(page.locator("#run-conn")).to_have_text(re.compile("live"))
    # The charts move: points arrive window by window.
    page.wait_for_function("() => document.querySelector('#chart-throughput').dataset.points >= 5")
    first = points(page, "chart-throughput")
    util_first = node(page, "database").get_attribute("data-util")
    page.wait_for_function(f"() => document.querySelector('#chart-throughput').dataset.points >= {first + 5}")
    assert points(page, "chart-latency") >= first + 5
    assert page.locator("#chart-latency path[data-series=p99]").get_attribute("d").count("L") >= first
    # The canvas follows the windows: utilisation per component, flow along the edges.
    util_later = node(page, "database").get_attribute("data-util")
    assert util_first and util_later and util_first != util_later, (util_first, util_later)
    expect(node(page, "database")).to_have_class(re.compile(r"util-(low|mid|high|over)"))
    expect(node(page, "database").locator(".node-kind")).to_contain_text("/s")
    expect(page.locator('svg.canvas .edge.flowing[data-to="database"]')).to_have_count(1)
    # Each window lays out only what it changed on the canvas (the figures), not every text in
    # it again (names, connection labels): the canvas's SVG is out of flow.
    marked = relaid_out(page, 1500)
    assert any("node-kind" in element for _, element in marked), marked[:10]
    again = [m for m in marked if "node-name" in m[1] or "edge-label" in m[1]]
    assert not again, again[:10]
    state["preview_class"] = preview_class
    shot(page, "run-live")


def test_pause_crash_while_paused_and_resume(dave):
    page = dave
    page.locator("#run-pause").click()
    wait_status(page, "paused", 5_000)
    expect(page.locator("#run-resume")).to_be_enabled()
    # The flow stands still while paused (and moves again once resumed).
    expect(page.locator("svg.canvas .edge.moving")).to_have_count(0)
    expect(page.locator("svg.canvas .edge.flowing").first).to_be_attached()
    time.sleep(0.4)
    held = dock_data(page)["windows"]
    time.sleep(1.0)
    assert dock_data(page)["windows"] == held, "no windows while paused"
    # The crash switch: aimed at the selected component.
    node(page, "database").locator(".node-box").click()
    expect(page.locator("#run-scope")).to_have_value("database")
    page.locator("#chaos-type").select_option("crash")
    expect(page.locator('.chaos-fields [data-chaos="component"]')).to_have_value("database")
    # A second tab watches the same run (its address names it).
    watcher = page.context.new_page()
    watcher.goto(page.url)
    expect(watcher.locator("#run-dock")).to_have_attribute("data-status", "paused", timeout=10_000)
    page.locator('.chaos-fields [data-chaos="duration_s"]').fill("30")
    page.locator("#chaos-inject").click()
    expect(page.locator("#run-timeline li[data-kind=chaos]")).to_contain_text("crash · database for 30 s")
    expect(page.locator("#chart-errors .mark-chaos").first).to_be_attached()
    shot(page, "run-paused-crash-injected")
    # The other watcher learns of it from the run (re-read every few seconds).
    expect(watcher.locator("#run-timeline li[data-kind=chaos]")).to_contain_text("crash · database", timeout=8_000)
    watcher.close()
    page.locator("#run-resume").click()
    wait_status(page, "running", 5_000)
    expect(page.locator("svg.canvas .edge.moving").first).to_be_attached()
    # The database goes down: red on the canvas, its error chart rises.
    expect(node(page, "database")).to_have_class(re.compile(r"\bdown\b"), timeout=10_000)
    expect(node(page, "database")).to_have_class(re.compile(r"util-over"))
    expect(node(page, "database").locator(".node-kind")).to_have_text("DOWN")
    page.wait_for_function("() => JSON.parse(document.querySelector('#chart-errors').dataset.max).err > 100")
    expect(page.locator("#chart-errors .chart-latest")).not_to_have_text(re.compile(r"^0 /s"))
    assert state["preview_class"] != node(page, "database").get_attribute("class")
    shot(page, "run-database-crashed")


def test_a_lost_network_resumes_the_stream_without_a_gap(dave):
    page = dave
    ctx = page.context
    before = int(dock_data(page)["windows"])
    ctx.set_offline(True)
    expect(dock(page)).to_have_attribute("data-connection", "reconnecting", timeout=5_000)
    expect(page.locator("#run-conn")).to_contain_text("reconnecting")
    expect(page.locator("svg.canvas .edge.moving")).to_have_count(0)
    shot(page, "run-offline")
    time.sleep(1.5)  # the run goes on meanwhile
    ctx.set_offline(False)
    expect(dock(page)).to_have_attribute("data-connection", re.compile("live|ended"), timeout=10_000)
    # And once more, the socket dropped under the page (as a server restart would).
    if dock_data(page)["connection"] == "live":
        page.evaluate("window.sdsimDebug.dropLive()")
        # The rest at 100x.
        page.locator("#run-speed").select_option("100")
        expect(page.locator("#run-status")).to_contain_text(re.compile(r"100x|completed"))
    wait_status(page, "completed", 40_000)
    d = dock_data(page)
    assert int(d["reconnects"]) >= 1
    assert d["gaps"] == "0", d
    assert int(d["windows"]) == DURATION and d["lastIndex"] == str(DURATION - 1), d
    assert int(d["windows"]) > before
    assert points(page, "chart-throughput") == DURATION
    shot(page, "run-completed")


def test_results_bottleneck_and_downloads(dave, tmp_path):
    page = dave
    page.locator("#run-tab-results").click()
    b = page.locator("#bottlenecks .bottleneck").first
    expect(b.locator(".message")).to_contain_text(re.compile(r"database|busy|saturated"))
    expect(b.locator(".suggestion")).to_be_visible()
    expect(page.locator("#forecasts table")).to_be_visible()
    expect(page.locator("#components-table")).to_contain_text("database")
    shot(page, "run-results")
    with page.expect_download() as dl:
        page.locator("#download-csv").click()
    csv = (tmp_path / "r.csv")
    dl.value.save_as(csv)
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("component,kind,arrivals,completions,drops,errors"), lines[0]
    assert any(line.startswith("database,postgresql,") for line in lines), lines
    assert lines[-1].startswith("end_to_end,")
    with page.expect_download() as dl:
        page.locator("#download-json").click()
    dl.value.save_as(tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["report"]["analysis"]["bottlenecks"]
    # A chart as SVG and as PNG.
    page.locator("#run-tab-live").click()
    with page.expect_download() as dl:
        page.get_by_role("button", name="Errors and drops as SVG").click()
    dl.value.save_as(tmp_path / "c.svg")
    svg = (tmp_path / "c.svg").read_text()
    assert "<svg" in svg and "Errors and drops" in svg and "path" in svg
    with page.expect_download() as dl:
        page.get_by_role("button", name="Latency as PNG").click()
    dl.value.save_as(tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state["first_run"] = dock_data(page)["runId"]


def test_a_smaller_database_saturates_and_compares_worse(dave):
    page = dave
    # What the report says to change, the other way round: fewer database servers.
    node(page, "database").locator(".node-box").click()
    page.locator('#panel input[data-field="servers"]').fill("5")
    wait_saved(page)
    page.locator("#run-speed").select_option("0")
    page.locator("#run-seed").fill("7")
    page.locator("#run-start").click()
    expect(dock(page)).not_to_have_attribute("data-run-id", state["first_run"])
    wait_status(page, "completed", 40_000)
    state["second_run"] = dock_data(page)["runId"]
    page.locator("#run-tab-results").click()
    b = page.locator("#bottlenecks .bottleneck.sev-critical").first
    expect(b).to_have_attribute("data-component", "database")
    expect(b.locator(".message")).to_contain_text("saturated")
    expect(b.locator(".suggestion")).to_contain_text(re.compile("replicas|servers"))
    expect(page.locator("#run-bottleneck-line")).to_contain_text("database")
    shot(page, "run-saturated-bottleneck")
    sel = page.locator("#compare-with")
    expect(sel.locator(f'option[value="{state["first_run"]}"]')).to_be_attached()
    sel.select_option(state["first_run"])
    page.locator("#compare-go").click()
    out = page.locator("#compare-result")
    # From GET /api/simulations/compare, or computed in the page where the route is missing.
    expect(out).to_have_attribute("data-source", re.compile("server|page"))
    table = out.locator(".compare-table").first
    expect(table).to_be_visible()
    # The end-to-end p99 got worse than in the first run.
    expect(table.locator("tr.worse", has_text="p99_ms")).to_have_count(1)
    expect(out.locator(".compare-table", has_text="database")).to_be_visible()
    out.scroll_into_view_if_needed()
    shot(page, "run-compare")


def test_history_lists_the_runs_and_reopens_one(dave):
    page = dave
    page.locator("#run-tab-history").click()
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(2)
    first = page.locator(f'#runs tr[data-run="{state["first_run"]}"]')
    expect(first).to_contain_text("completed")
    shot(page, "run-history")
    first.get_by_role("button", name="Open").click()
    expect(dock(page)).to_have_attribute("data-run-id", state["first_run"])
    wait_status(page, "completed", 20_000)
    expect(dock(page)).to_have_attribute("data-windows", str(DURATION), timeout=20_000)
    assert dock_data(page)["gaps"] == "0"
    page.locator("#run-tab-live").click()
    expect(page.locator("#run-timeline li[data-kind=chaos]")).to_contain_text("crash · database")
    expect(page.locator("#chart-throughput")).to_have_attribute("data-points", str(DURATION))
    # Reloading the page with ?run= opens the same run.
    assert f"run={state['first_run']}" in page.url
    page.reload()
    expect(dock(page)).to_have_attribute("data-windows", str(DURATION), timeout=20_000)
    page.locator("#run-tab-results").click()
    expect(page.locator("#bottlenecks .bottleneck").first).to_be_visible()
    shot(page, "run-reopened")
    # An anomaly of the report, ringed on its component's chart.
    page.locator("#anomalies .anomaly-link").first.click()
    expect(page.locator("#run-live")).to_be_visible()
    expect(page.locator(".charts .anomaly").first).to_be_attached()
    shot(page, "run-anomaly-marked")


def test_stop_a_run_at_real_time(dave):
    page = dave
    page.locator("#run-tab-live").click()
    page.locator("#run-speed").select_option("1")
    page.locator("#run-start").click()
    expect(dock(page)).not_to_have_attribute("data-run-id", state["first_run"])
    wait_status(page, "running", 10_000)
    page.wait_for_function("() => document.querySelector('#run-dock').dataset.windows >= 1")
    page.locator("#run-stop").click()
    wait_status(page, "stopped", 15_000)
    expect(page.locator("#run-stop")).to_be_disabled()
    expect(page.locator("#run-start")).to_be_enabled()
    shot(page, "run-stopped")
    # A finished run can be deleted from the history.
    stopped = dock_data(page)["runId"]
    page.locator("#run-tab-history").click()
    expect(page.locator("#runs tbody tr")).to_have_count(3)
    page.locator(f'#runs tr[data-run="{stopped}"]').get_by_role("button", name="Delete").click()
    page.locator("dialog[open]").get_by_role("button", name="Delete").click()
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    expect(page.locator(f'#runs tr[data-run="{stopped}"]')).to_have_count(0)
    assert "run=" not in page.url


def test_added_latency_shows_on_the_timeline_and_raises_p99(dave):
    page = dave
    design = {"duration_s": 120, "components": [
        {"name": "clients", "kind": "client", "traffic": {"type": "open", "rate": 20}},
        {"name": "api", "kind": "service"}], "connections": [{"from": "clients", "to": "api"}]}
    pid = api(page, "POST", "/api/projects", {"name": f"Slow {RUN}", "design": design})["project"]["id"]
    page.goto(f"/projects/{pid}")
    expect(node(page, "api")).to_be_visible()
    page.locator("#open-run").click()
    page.locator("#run-speed").select_option("10")
    page.locator("#run-start").click()
    wait_status(page, "running", 10_000)
    page.wait_for_function("() => document.querySelector('#chart-latency').dataset.points >= 3")
    before = json.loads(page.locator("#chart-latency").get_attribute("data-max"))["p99"]
    assert 0 < before < 250, before
    page.locator("#chaos-type").select_option("latency")
    page.locator('.chaos-fields [data-chaos="component"]').select_option("api")
    page.locator('.chaos-fields [data-chaos="extra_ms"]').fill("300")
    page.locator('.chaos-fields [data-chaos="duration_s"]').fill("30")
    page.locator("#chaos-inject").click()
    expect(page.locator("#run-timeline li[data-kind=chaos]")).to_contain_text("+300 ms latency · api for 30 s")
    expect(page.locator("#chart-latency .mark-chaos").first).to_be_attached()
    # The end-to-end p99 rises by about the added 300 ms.
    page.wait_for_function(
        f"() => JSON.parse(document.querySelector('#chart-latency').dataset.max).p99 > {before + 250}", timeout=10_000)
    shot(page, "run-latency-injected")
    page.locator("#run-speed").select_option("0")
    wait_status(page, "completed", 20_000)
    assert dock_data(page)["gaps"] == "0"
