"""The page's diff and three-way merge (web/app/diff.js), run in Chromium on the served module."""

import pytest

from conftest import new_context

BASE = {
    "design": {"duration_s": 60, "components": [{"name": "a", "kind": "client"}, {"name": "b", "kind": "service"}],
               "connections": [{"from": "a", "to": "b"}]},
    "layout": {"ids": {"a": "1", "b": "2"}, "positions": {"1": {"x": 0, "y": 0}, "2": {"x": 100, "y": 0}}},
}
MINE = {  # renames b to bb, sets its servers, moves it
    "design": {"duration_s": 60, "components": [{"name": "a", "kind": "client"}, {"name": "bb", "kind": "service", "servers": 3}],
               "connections": [{"from": "a", "to": "bb"}]},
    "layout": {"ids": {"a": "1", "bb": "2"}, "positions": {"1": {"x": 0, "y": 0}, "2": {"x": 100, "y": 50}}},
}
THEIRS = {  # sets b's replicas, adds c after b, a latency, a longer run
    "design": {"duration_s": 90, "components": [{"name": "a", "kind": "client"}, {"name": "b", "kind": "service", "replicas": 2},
                                                {"name": "c", "kind": "redis"}],
               "connections": [{"from": "a", "to": "b", "latency_ms": 3}, {"from": "b", "to": "c"}]},
    "layout": {"ids": {"a": "1", "b": "2", "c": "3"}, "positions": {"1": {"x": 0, "y": 0}, "2": {"x": 100, "y": 0}, "3": {"x": 200, "y": 0}}},
}


@pytest.fixture(scope="module")
def page(browser):
    # The page's CSP forbids evaluating strings; the test's own scripts need that.
    ctx = browser.new_context(base_url=new_context.__globals__["BASE"], bypass_csp=True)
    p = ctx.new_page()
    p.goto("/login")
    yield p
    ctx.close()


def run(page, fn, *args):
    return page.evaluate(
        "async ([fn, args]) => { const m = await import('/app/diff.js'); return m[fn](...args); }", [fn, list(args)]
    )


def test_a_rename_is_a_rename_with_ids_and_not_without(page):
    d = run(page, "diffDesigns", BASE["design"], BASE["layout"], MINE["design"], MINE["layout"])
    assert d["components"]["renamed"] == [{"id": "2", "from": "b", "to": "bb"}]
    assert d["components"]["added"] == [] and d["components"]["removed"] == []
    assert d["components"]["changed"] == [{"name": "bb", "fields": ["servers"]}]
    assert d["connections"]["added"] == [] and d["connections"]["removed"] == []
    d = run(page, "diffDesigns", BASE["design"], {}, MINE["design"], {})
    assert d["components"]["added"] == ["bb"] and d["components"]["removed"] == ["b"]


def test_merge_keeps_both_sides_changes(page):
    m = run(page, "mergeDesigns", BASE, MINE, THEIRS)
    assert m["clashes"] == []
    comps = {c["name"]: c for c in m["design"]["components"]}
    assert set(comps) == {"a", "bb", "c"}
    assert comps["bb"]["servers"] == 3 and comps["bb"]["replicas"] == 2
    assert m["design"]["duration_s"] == 90
    assert {"from": "a", "to": "bb", "latency_ms": 3} in m["design"]["connections"]
    assert {"from": "bb", "to": "c"} in m["design"]["connections"]
    assert m["layout"]["ids"] == {"a": "1", "bb": "2", "c": "3"}
    assert m["layout"]["positions"]["2"] == {"x": 100, "y": 50}


def test_merge_lists_a_clash_and_keeps_mine(page):
    theirs = {"design": {**THEIRS["design"], "components": [{"name": "a", "kind": "client"}, {"name": "b", "kind": "service", "servers": 9}]},
              "layout": THEIRS["layout"]}
    m = run(page, "mergeDesigns", BASE, MINE, theirs)
    assert m["clashes"] == ["bb: servers"]
    assert [c for c in m["design"]["components"] if c["name"] == "bb"][0]["servers"] == 3
