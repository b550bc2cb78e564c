"""Live collaboration's logic (web/app/collab.js), run in Chromium on the served module: every
rule of docs/collaboration.md "Ops" (the same as actors/project/src/ops.rs: every replica must
compute what the server computes), the diff that turns an editor change into small ops, and
the session's confirmed and pending documents against a scripted socket."""

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


def apply(page, doc, ops):
    return page.evaluate(
        "async ([doc, ops]) => { const m = await import('/app/collab.js'); return m.applyEdit(doc, ops); }", [doc, ops]
    )


def js(page, body, arg=None):
    return page.evaluate(
        "async ([body, arg]) => { const m = await import('/app/collab.js');"
        " return new (async () => {}).constructor('m', 'arg', body)(m, arg); }",
        [body, arg],
    )


def base():
    return {
        "design": {"components": [{"name": "api", "replicas": 1}, {"name": "db"}],
                   "connections": [{"from": "api", "to": "db"}]},
        "layout": {"ids": {"api": "a1"}, "positions": {"a1": {"x": 1, "y": 2}}},
    }


def s(path, value):
    return {"op": "set", "path": path, "value": value}


def d(path):
    return {"op": "delete", "path": path}


def test_set_by_key_and_by_matcher(page):
    r = apply(page, base(), [
        s(["layout", "positions", "a1"], {"x": 5, "y": 6}),                          # replaces a key
        s(["layout", "positions", "b2"], {"x": 0, "y": 0}),                          # adds a key
        s(["design", "components", {"name": "api"}, "replicas"], 3),                 # through a matcher
        s(["design", "connections", {"from": "api", "to": "db"}, "latency_ms"], 2),  # a two-field matcher
    ])
    assert r["layout"]["positions"] == {"a1": {"x": 5, "y": 6}, "b2": {"x": 0, "y": 0}}
    assert r["design"]["components"][0] == {"name": "api", "replicas": 3}
    assert r["design"]["connections"][0] == {"from": "api", "to": "db", "latency_ms": 2}


def test_a_matcher_at_the_end_replaces_or_appends_and_deletes(page):
    r = apply(page, base(), [
        s(["design", "components", {"name": "cache"}], {"name": "cache", "kind": "redis"}),  # none matches: appended
        s(["design", "components", {"name": "db"}], {"name": "db", "kind": "postgresql"}),   # replaced in place
        d(["design", "connections", {"from": "api", "to": "db"}]),
        d(["layout", "ids", "api"]),
    ])
    assert r["design"]["components"] == [{"name": "api", "replicas": 1}, {"name": "db", "kind": "postgresql"},
                                         {"name": "cache", "kind": "redis"}]
    assert r["design"]["connections"] == []
    assert r["layout"]["ids"] == {}


def test_a_matcher_picks_the_first_element_equal_in_all_its_fields(page):
    doc = {"design": {"xs": ["not an object", {"a": 1, "b": "x", "n": 0}, {"a": 1, "b": "y"}, {"a": 1, "b": "y", "n": 2}]},
           "layout": {}}
    r = apply(page, doc, [
        s(["design", "xs", {"a": 1, "b": "y"}, "n"], 9),   # the first with both fields equal
        d(["design", "xs", {"a": 1}]),                     # the first with a == 1 (strings are skipped)
        s(["design", "xs", {"a": "1"}, "n"], 5),           # "1" is not 1: nothing matches, skipped
    ])
    assert r["design"]["xs"] == ["not an object", {"a": 1, "b": "y", "n": 9}, {"a": 1, "b": "y", "n": 2}]


def test_what_finds_nothing_is_skipped_alike(page):
    b = base()
    r = apply(page, b, [
        s(["design", "components", {"name": "gone"}, "replicas"], 2),        # no match on the way
        s(["layout", "missing", "x"], 1),                                    # missing key on the way
        d(["design", "components", {"name": "gone"}]),                       # delete, nothing matches
        d(["layout", "nothing"]),                                            # delete, absent key
        s(["design", "components", "api"], 1),                              # a key on an array
        s(["layout", {"name": "x"}], 1),                                     # a matcher on an object
        s(["design", "components", {"name": "api"}, "replicas", "deeper"], 1),  # a scalar parent
        s(["design", "connections", {"from": "api", "to": "db"}, "from", "x"], 1),
        d(["design", "components", "0"]),                                    # no index, even as a key
    ])
    assert r == base()


def test_skipped_ops_do_not_stop_the_others(page):
    r = apply(page, base(), [
        s(["design", "components", {"name": "gone"}, "replicas"], 2),
        s(["design", "components", {"name": "db"}, "replicas"], 4),
    ])
    assert r["design"]["components"][1] == {"name": "db", "replicas": 4}


def test_ops_apply_in_order_the_later_wins(page):
    r = apply(page, base(), [
        s(["design", "duration_s"], 10),
        s(["design", "duration_s"], 20),
        d(["design", "components", {"name": "db"}]),
        s(["design", "components", {"name": "db"}, "replicas"], 3),  # deleted just before: skipped
        s(["design", "components", {"name": "api"}, "name"], "gateway"),
        s(["design", "components", {"name": "gateway"}, "replicas"], 5),  # the renamed one
    ])
    assert r["design"]["duration_s"] == 20
    assert r["design"]["components"] == [{"name": "gateway", "replicas": 5}]


def test_a_whole_part_is_replaced_by_an_object_only(page):
    r = apply(page, base(), [s(["layout"], {"ids": {}})])
    assert r["layout"] == {"ids": {}}
    r = apply(page, base(), [s(["design"], {"components": []}), s(["layout"], {"x": 1})])
    assert r == {"design": {"components": []}, "layout": {"x": 1}}
    # Refused edits apply nothing at all, their other ops neither.
    assert apply(page, base(), [s(["design", "duration_s"], 1), s(["design"], 3)]) == base()
    assert apply(page, base(), [s(["design", "duration_s"], 1), d(["design"])]) == base()


def test_malformed_edits_apply_nothing_and_say_why(page):
    ok = s(["design", "duration_s"], 1)
    cases = [
        ({}, "array"),
        ([], "1 to"),
        ([ok] * 257, "1 to 256"),
        ([ok, {"op": "move", "path": ["design"]}], "ops[1]: op must be set or delete"),
        ([{"op": "set", "path": ["x"], "value": 1}], "starts with"),
        ([{"op": "set", "path": [], "value": 1}], "1 to 32"),
        ([{"op": "set", "path": ["design"] + ["k"] * 32, "value": 1}], "1 to 32"),
        ([{"op": "set", "path": ["design", 0], "value": 1}], "path[1]"),
        ([{"op": "set", "path": [{"name": "a"}], "value": 1}], "starts with"),
        ([{"op": "set", "path": ["design", "a"]}], "needs a value"),
        ([{"op": "set", "path": ["design", {}], "value": 1}], "path[1]"),
        ([{"op": "set", "path": ["design", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}], "value": 1}], "path[1]"),
        ([{"op": "set", "path": ["design", {"a": True}], "value": 1}], "path[1]"),
        ([{"op": "set", "path": ["design", {"a": None}], "value": 1}], "path[1]"),
        ([{"op": "set", "path": ["design", "k" * 201], "value": 1}], "200"),
        ([{"op": "set", "path": ["design", "a"], "value": 1, "extra": 1}], "unknown field"),
        ([{"op": "delete", "path": ["design", "a"], "value": 1}], "no value"),
        ([{"op": "set", "path": "design", "value": 1}], "path must be an array"),
        (["set"], "an op is an object"),
    ]
    for ops, says in cases:
        problem = js(page, "return m.editProblem(arg)", ops)
        assert problem and says in problem, (ops, problem)
        assert apply(page, base(), ops if isinstance(ops, list) else []) == base()
    # At the limits: 256 ops, 32 segments, a 200-character key (characters, not UTF-16 units),
    # a matcher of 4 fields, a set of null.
    assert js(page, "return m.editProblem(arg)", [ok] * 256) is None
    assert js(page, "return m.editProblem(arg)", [s(["design"] + ["k"] * 31, 1)]) is None
    assert js(page, "return m.editProblem(arg)", [s(["design", "😀" * 200], 1)]) is None
    assert js(page, "return m.editProblem(arg)", [s(["design", {"a": 1, "b": "2", "c": 3.5, "d": -1}], 1)]) is None
    assert js(page, "return m.editProblem(arg)", [s(["design", "a"], None)]) is None


def test_a_key_named_proto_is_a_plain_key(page):
    r = js(page, """
        const doc = { design: {}, layout: {} };
        m.applyEdit(doc, [{ op: 'set', path: ['design', '__proto__'], value: { polluted: 1 } }]);
        return { own: Object.keys(doc.design), polluted: ({}).polluted === 1 || doc.design.polluted === 1, text: JSON.stringify(doc) };
    """)
    assert r == {"own": ["__proto__"], "polluted": False, "text": '{"design":{"__proto__":{"polluted":1}},"layout":{}}'}


def test_the_same_edits_in_the_same_order_give_the_same_document(page):
    # Two replicas, one order: the later set of a field wins on both; what a delete removed
    # is skipped on both.
    edits = [
        [s(["design", "components", {"name": "api"}, "replicas"], 2)],
        [d(["design", "components", {"name": "db"}])],
        [s(["design", "components", {"name": "api"}, "replicas"], 7)],
        [s(["design", "components", {"name": "db"}, "replicas"], 9)],
    ]
    r = js(page, """
        const a = arg.base; const b = JSON.parse(JSON.stringify(arg.base));
        for (const e of arg.edits) m.applyEdit(a, e);
        for (const e of arg.edits) m.applyEdit(b, e);
        return [a, b];
    """, {"base": base(), "edits": edits})
    assert r[0] == r[1]
    assert r[0]["design"]["components"] == [{"name": "api", "replicas": 7}]


# ---------- the diff ----------

DOC = {
    "design": {"duration_s": 60, "components": [
        {"name": "web", "kind": "web_server", "replicas": 2},
        {"name": "api", "kind": "service", "service_time": {"dist": "exponential", "mean_ms": 5}},
        {"name": "db", "kind": "postgresql"}],
        "connections": [{"from": "web", "to": "api"}, {"from": "api", "to": "db", "latency_ms": 1}]},
    "layout": {"ids": {"web": "1", "api": "2", "db": "3"},
               "positions": {"1": {"x": 0, "y": 0}, "2": {"x": 200, "y": 0}, "3": {"x": 400, "y": 0}}},
}


def diff(page, a, b):
    return js(page, "return m.diffDocs(arg[0], arg[1])", [a, b])


def test_a_move_is_one_set_of_its_position(page):
    b = {**DOC, "layout": {**DOC["layout"], "positions": {**DOC["layout"]["positions"], "2": {"x": 250, "y": 40}}}}
    assert diff(page, DOC, b) == [s(["layout", "positions", "2"], {"x": 250, "y": 40})]


def test_a_field_is_one_set_through_its_matcher(page):
    import copy
    b = copy.deepcopy(DOC)
    b["design"]["components"][1]["service_time"]["mean_ms"] = 8
    del b["design"]["components"][0]["replicas"]
    b["design"]["connections"][1]["latency_ms"] = 3
    assert diff(page, DOC, b) == [
        d(["design", "components", {"name": "web"}, "replicas"]),
        s(["design", "components", {"name": "api"}, "service_time", "mean_ms"], 8),
        s(["design", "connections", {"from": "api", "to": "db"}, "latency_ms"], 3),
    ]


def test_a_rename_keeps_a_concurrent_edit_of_the_same_component(page):
    import copy
    mine = copy.deepcopy(DOC)  # api renamed to gateway, its connections follow
    mine["design"]["components"][1]["name"] = "gateway"
    mine["design"]["connections"] = [{"from": "web", "to": "gateway"}, {"from": "gateway", "to": "db", "latency_ms": 1}]
    mine["layout"]["ids"] = {"web": "1", "gateway": "2", "db": "3"}
    ops = diff(page, DOC, mine)
    assert ops[0] == s(["design", "components", {"name": "api"}, "name"], "gateway")
    assert s(["design", "connections", {"from": "web", "to": "api"}], {"from": "web", "to": "gateway"}) in ops
    assert len(ops) == 5  # the name, two connections, the layout's id out and in
    theirs = [s(["design", "components", {"name": "api"}, "replicas"], 4)]
    # Theirs first (an earlier seq), then mine: both kept.
    r = apply(page, apply(page, copy.deepcopy(DOC), theirs), ops)
    assert r["design"]["components"][1] == {"name": "gateway", "kind": "service", "replicas": 4,
                                            "service_time": {"dist": "exponential", "mean_ms": 5}}
    assert r["design"]["connections"] == mine["design"]["connections"]


def test_adding_and_deleting_a_component(page):
    import copy
    b = copy.deepcopy(DOC)
    b["design"]["components"] = [c for c in b["design"]["components"] if c["name"] != "db"]
    b["design"]["connections"] = [e for e in b["design"]["connections"] if e["to"] != "db"]
    del b["layout"]["ids"]["db"]
    del b["layout"]["positions"]["3"]
    b["design"]["components"].append({"name": "cache", "kind": "redis"})
    b["layout"]["ids"]["cache"] = "4"
    b["layout"]["positions"]["4"] = {"x": 9, "y": 9}
    ops = diff(page, DOC, b)
    assert ops == [
        d(["design", "components", {"name": "db"}]),
        s(["design", "components", {"name": "cache"}], {"name": "cache", "kind": "redis"}),
        d(["design", "connections", {"from": "api", "to": "db"}]),
        d(["layout", "ids", "db"]),
        s(["layout", "ids", "cache"], "4"),
        d(["layout", "positions", "3"]),
        s(["layout", "positions", "4"], {"x": 9, "y": 9}),
    ]
    assert apply(page, copy.deepcopy(DOC), ops) == b
    # The inverse (what undo sends) brings it all back; the component comes back at the end.
    back = apply(page, b, diff(page, b, DOC))
    assert sorted(c["name"] for c in back["design"]["components"]) == ["api", "db", "web"]
    assert back["layout"] == DOC["layout"]
    assert {"from": "api", "to": "db", "latency_ms": 1} in back["design"]["connections"]


def test_two_people_editing_different_things_both_land(page):
    import copy
    mine = copy.deepcopy(DOC)
    mine["design"]["components"][0]["replicas"] = 5
    theirs = copy.deepcopy(DOC)
    theirs["layout"]["positions"]["1"] = {"x": -50, "y": 10}
    theirs["design"]["duration_s"] = 90
    r = js(page, """
        const [doc, a, b] = arg;
        const ma = m.diffDocs(doc, a); const mb = m.diffDocs(doc, b);
        const one = m.applyEdit(m.applyEdit(JSON.parse(JSON.stringify(doc)), ma), mb);
        const two = m.applyEdit(m.applyEdit(JSON.parse(JSON.stringify(doc)), mb), ma);
        return [one, two];
    """, [DOC, mine, theirs])
    assert r[0] == r[1]
    assert r[0]["design"]["components"][0]["replicas"] == 5
    assert r[0]["design"]["duration_s"] == 90 and r[0]["layout"]["positions"]["1"] == {"x": -50, "y": 10}


def test_a_large_change_becomes_one_set_per_part(page):
    import copy
    b = copy.deepcopy(DOC)
    b["design"]["components"] = [{"name": f"c{i}", "kind": "service"} for i in range(300)]
    ops = diff(page, DOC, b)
    assert ops == [s(["design"], {**DOC["design"], "components": b["design"]["components"], "connections": DOC["design"]["connections"]})]
    assert diff(page, DOC, copy.deepcopy(DOC)) == []


# ---------- the session ----------

# A scripted WebSocket: the test plays the server.
FAKE = """
    const sent = []; const socks = [];
    class Fake {
      constructor(url) { this.url = url; this.readyState = 0; socks.push(this); setTimeout(() => { this.readyState = 1; this.onopen?.(); }, 0); }
      send(t) { sent.push(JSON.parse(t)); }
      close(code) { this.readyState = 3; setTimeout(() => this.onclose?.({ code: code || 1000 }), 0); }
      serve(f) { this.onmessage?.({ data: JSON.stringify(f) }); }
    }
    window.WebSocket = Fake; Fake.OPEN = 1;
    const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
"""


def test_pending_edits_show_on_top_of_the_confirmed_document_and_resume_after_a_drop(page):
    r = js(page, FAKE + """
        const docs = []; const errors = []; const states = [];
        const s = new m.CollabSession('p1', {
          onDocument: (d, i) => docs.push([d, i.remote]), onError: (f) => errors.push(f.code),
          onStatus: (x) => states.push(x),
        }, { design: { a: 0 }, layout: {} });
        await tick();
        const ws = socks[0];
        const auth = sent.shift();
        // An edit before the sync: pending on the REST document, sent once live.
        s.edit([{ op: 'set', path: ['design', 'mine'], value: 1 }]);
        ws.serve({ type: 'auth_ok' });
        ws.serve({ type: 'collaboration.sync', offset: '4', data: { design: { a: 4 }, layout: {}, role: 'editor', you: { session: 'me' }, peers: [{ session: 'me' }, { session: 'p', name: 'Bo' }] } });
        const afterSync = s.doc();
        const firstSent = sent.filter((f) => f.type === 'edit').map((f) => f.edit_id);
        // Someone else's edit arrives before ours: ours stays on top.
        ws.serve({ type: 'collaboration.edit', offset: '5', data: { client_id: 'other', edit_id: 1, ops: [{ op: 'set', path: ['design', 'mine'], value: 9 }, { op: 'set', path: ['design', 'a'], value: 5 }] } });
        const withTheirs = s.doc();
        ws.serve({ type: 'collaboration.edit', offset: '6', data: { client_id: s.clientId, edit_id: 1, ops: [{ op: 'set', path: ['design', 'mine'], value: 1 }] } });
        ws.serve({ type: 'collaboration.ack', offset: '6', data: { client_id: s.clientId, edit_id: 1, duplicate: false } });
        const pendingAfterEcho = s.pending.length;
        // A refused edit leaves the shown document.
        s.edit([{ op: 'set', path: ['design', 'bad'], value: 1 }]);
        const withBad = s.doc();
        ws.serve({ type: 'error', code: 'invalid_edit', message: 'no', edit_id: 2 });
        const afterRefusal = s.doc();
        // Offline: an edit waits; the drop reconnects with since = 6 and resends it, same ids.
        s.drop();
        s.edit([{ op: 'set', path: ['design', 'later'], value: 1 }]);
        await tick(400);
        const ws2 = socks[1];
        const auth2 = sent.find((f) => f.type === 'auth' && f !== auth);
        const before = sent.length;
        ws2.serve({ type: 'auth_ok' });
        // A resumed sync has no document, and the latest offset: the edits after 6 follow.
        ws2.serve({ type: 'collaboration.sync', offset: '7', data: { resumed: true, role: 'editor', you: { session: 'me2' }, peers: [] } });
        const resent = sent.slice(before).filter((f) => f.type === 'edit');
        ws2.serve({ type: 'collaboration.edit', offset: '7', data: { client_id: 'other', edit_id: 2, ops: [{ op: 'set', path: ['design', 'a'], value: 7 }] } });
        // The same edit twice (around a reconnection) applies once; a gap drops the socket.
        ws2.serve({ type: 'collaboration.edit', offset: '7', data: { client_id: 'other', edit_id: 2, ops: [{ op: 'set', path: ['design', 'a'], value: 70 }] } });
        const final = s.doc();
        ws2.serve({ type: 'collaboration.edit', offset: '9', data: { client_id: 'other', edit_id: 3, ops: [{ op: 'set', path: ['design', 'a'], value: 9 }] } });
        await tick(400);
        const auth3 = sent.filter((f) => f.type === 'auth').pop();
        s.close();
        return { auth, auth2, auth3, afterSync, firstSent, withTheirs, pendingAfterEcho, withBad, afterRefusal, resent, final,
                 errors, states, offset: s.offset, peers: [...s.peers.keys()], sockets: socks.length };
    """)
    assert r["auth"]["type"] == "auth" and "since" not in r["auth"]
    assert r["afterSync"]["design"] == {"a": 4, "mine": 1}
    assert r["firstSent"] == [1]
    assert r["withTheirs"]["design"] == {"a": 5, "mine": 1}  # mine is later: it wins on screen
    assert r["pendingAfterEcho"] == 0
    assert r["withBad"]["design"]["bad"] == 1 and "bad" not in r["afterRefusal"]["design"]
    assert r["errors"] == ["invalid_edit"]
    assert r["auth2"]["since"] == "6"
    assert [(e["edit_id"], e["ops"][0]["path"]) for e in r["resent"]] == [(3, ["design", "later"])]
    assert r["final"]["design"] == {"a": 7, "mine": 1, "later": 1}
    assert r["auth3"]["since"] == "7"  # the gap: resumed from the last edit it has
    assert r["peers"] == []
    assert r["states"][:3] == ["connecting", "live", "reconnecting"] and "live" in r["states"][3:]


def test_presence_is_throttled_and_4004_ends_the_session(page):
    r = js(page, FAKE + """
        const states = [];
        const s = new m.CollabSession('p2', { onStatus: (x) => states.push(x) });
        await tick();
        socks[0].serve({ type: 'collaboration.sync', offset: '0', data: { design: {}, layout: {}, role: 'viewer', you: { session: 'me' }, peers: [] } });
        const t0 = performance.now();
        for (let i = 0; i < 50; i++) { s.presence({ selection: null, pointer: { x: i, y: 0 } }); await tick(2); }
        const elapsed = performance.now() - t0;
        await tick(120);
        const frames = sent.filter((f) => f.type === 'presence');
        socks[0].close(4004);
        await tick(50);
        return { n: frames.length, elapsed, last: frames[frames.length - 1].pointer.x, states, done: s.done, sockets: socks.length };
    """)
    assert 1 < r["n"] <= r["elapsed"] / 50 + 2, r  # at most one frame per 50 ms
    assert r["last"] == 49  # the last position is always sent
    assert r["states"][-1] == "gone" and r["done"] and r["sockets"] == 1
