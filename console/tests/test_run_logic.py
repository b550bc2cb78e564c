"""The run dock's logic (web/app/views/run.js, web/app/charts.js), run in Chromium on the
served modules: windows kept compactly, flows along connections, the comparison computed in
the page when the server has no compare route, axis bounds and number formats."""

import pytest

from conftest import new_context


@pytest.fixture(scope="module")
def page(browser):
    # The page's CSP forbids evaluating strings; the test's own scripts need that.
    ctx = browser.new_context(base_url=new_context.__globals__["BASE"], bypass_csp=True)
    p = ctx.new_page()
    p.goto("/login")
    yield p
    ctx.close()


def js(page, body, arg=None):
    return page.evaluate(
        "async ([body, arg]) => { const run = await import('/app/views/run.js');"
        " const charts = await import('/app/charts.js'); return new Function('run', 'charts', 'arg', body)(run, charts, arg); }",
        [body, arg],
    )


def window(index, comps, e2e=None):
    return {"index": index, "start_s": index, "end_s": index + 1, "components": comps,
            "end_to_end": e2e or {"arrivals": 100, "throughput": 90, "errors": 10, "p99_ms": 5}, "alerts": []}


def test_windows_are_kept_compactly_and_read_back(page):
    w0 = window(0, [{"name": "api", "arrivals": 100, "throughput": 90, "utilisation": 0.5, "p99_ms": None, "errors": 10, "replicas_up": 2},
                    {"name": "db", "arrivals": 50, "throughput": 50, "utilisation": 0.25, "p99_ms": 3.5, "errors": 0}])
    # A component first seen in a later window reads as absent from the earlier ones.
    w1 = window(1, [{"name": "api", "arrivals": 200, "throughput": 180, "utilisation": 0.75, "p99_ms": 2, "errors": 0},
                    {"name": "cache", "arrivals": 7, "throughput": 7, "utilisation": 0.1}])
    r = js(page, """
        const s = new run.WindowStore(); s.add(arg[0]); s.add(arg[1]);
        const [a, b] = s.list;
        return { n: s.length, names: s.names, api0: s.point(a, 'api'), api1: s.point(b, 'api'), cache0: s.point(a, 'cache'),
                 e2e0: s.point(a, null), db0: s.comp(a, 'db'), db1: s.comp(b, 'db'), up: s.comp(a, 'api').replicas_up,
                 byName: [...s.byName(b).keys()] };
    """, [w0, w1])
    assert r["n"] == 2 and r["names"] == ["api", "db", "cache"]
    assert r["api0"]["thr"] == 90 and r["api0"]["util"] == 50 and r["api0"]["err"] == 10 and r["api0"]["p99"] is None
    assert r["api1"]["util"] == 75 and r["api1"]["p99"] == 2
    assert r["cache0"] == {"t": 1}
    assert r["e2e0"]["util"] == 50, "end to end: the busiest component"
    assert r["e2e0"]["err"] == 10 and r["e2e0"]["p99"] == 5
    assert r["db0"]["p99_ms"] == 3.5 and r["db0"]["p50_ms"] is None
    assert r["db1"]["arrivals"] is None, "db sent nothing in window 1"
    assert r["up"] == 2
    assert r["byName"] == ["api", "cache"] or set(r["byName"]) >= {"api", "cache"}


def test_flows_share_a_targets_arrivals_among_its_sources(page):
    design = {"components": [{"name": "users", "kind": "client"}, {"name": "lb", "kind": "nginx_lb"}, {"name": "a", "kind": "service"},
                             {"name": "b", "kind": "service"}, {"name": "db", "kind": "postgresql"}],
              "connections": [{"from": "users", "to": "lb"}, {"from": "lb", "to": "a"}, {"from": "lb", "to": "b"},
                              {"from": "a", "to": "db"}, {"from": "b", "to": "db"}]}
    comps = {"lb": {"arrivals": 1000, "throughput": 1000}, "a": {"arrivals": 500, "throughput": 300},
             "b": {"arrivals": 500, "throughput": 100}, "db": {"arrivals": 400, "throughput": 400}}
    flows = js(page, """
        const m = new Map(Object.entries(arg.comps));
        return Object.fromEntries(run.edgeFlows(arg.design, m, 2, { arrivals: 2000 }));
    """, {"design": design, "comps": comps})
    assert flows["0"] == 500  # users to lb: lb's arrivals per second
    assert flows["1"] == 250 and flows["2"] == 250
    # db's 200/s come from a and b in proportion to what each sends (300:100).
    assert flows["3"] == pytest.approx(150) and flows["4"] == pytest.approx(50)


def test_the_page_compares_two_reports_when_the_server_cannot(page):
    a = {"end_to_end": {"throughput": 100, "p99_ms": 50, "errors": 0}, "components": [{"name": "db", "utilisation": 0.4, "p99_ms": 10}, {"name": "old"}]}
    b = {"end_to_end": {"throughput": 120, "p99_ms": 100, "errors": 5}, "components": [{"name": "db", "utilisation": 0.8, "p99_ms": 30}, {"name": "new"}]}
    c = js(page, "return run.compareReports(arg[0], arg[1]);", [a, b])
    assert c["end_to_end"]["p99_ms"] == {"a": 50, "b": 100, "change": 50, "ratio": 2}
    assert c["end_to_end"]["throughput"]["ratio"] == 1.2
    assert c["end_to_end"]["errors"]["ratio"] is None  # from zero
    ins = {x["name"]: x["in"] for x in c["components"]}
    assert ins == {"db": "both", "old": "a", "new": "b"}
    db = next(x for x in c["components"] if x["name"] == "db")
    assert db["metrics"]["utilisation"]["ratio"] == 2
    assert any("p99" in s and "rose" in s for s in c["summary"])


def test_axis_bounds_and_numbers(page):
    r = js(page, """
        return { m: [0, 0.7, 1, 3, 42, 99, 101, 2400, 1e7].map(charts.niceMax),
                 f: [charts.fmt(1234), charts.fmt(0.5), charts.fmt(12.345, 'ms'), charts.fmt(45, '%'), charts.fmt(null), charts.fmt(2.5e6), charts.fmt(0)] };
    """)
    assert r["m"] == [1, 1, 1, 5, 50, 100, 200, 2500, 1e7]
    assert r["f"] == ["1.2k", "0.5", "12.3 ms", "45%", "–", "2.5M", "0"]


def test_a_chart_draws_gaps_single_points_and_exports(page):
    r = js(page, """
        const c = charts.lineChart({ id: 'x', title: 'X', unit: 'ms', series: [{ key: 'v', label: 'v', color: '#000' }] });
        document.body.append(c.el);
        c.setData([{ t: 1, v: 1 }, { t: 2, v: 2 }, { t: 3, v: null }, { t: 4, v: 3 }], 10);
        c.setMarks([{ t: 2, t2: 5, label: 'crash', color: '#f00', kind: 'chaos' }]);
        c.render();
        const d = c.el.querySelector('path[data-series=v]').getAttribute('d');
        const svg = c.svgText();
        return { d, marks: c.el.querySelectorAll('.mark-chaos').length, svg: svg.slice(0, 200), max: c.el.dataset.max, points: c.el.dataset.points };
    """)
    # Two points joined, a gap, then a lone point drawn as a dot.
    assert r["d"].count("M") == 2 and r["d"].count("L") == 1 and r["d"].endswith("h0.5")
    assert r["marks"] == 2  # the span and its line
    assert r["svg"].startswith('<?xml') and "<svg" in r["svg"] and 'xmlns="http://www.w3.org/2000/svg"' in r["svg"]
    assert r["max"] == '{"v":3}' and r["points"] == "4"
