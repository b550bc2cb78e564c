"""The rest of what a person does with projects: undo and redo with the keyboard, rollback,
export and import, trash and restore, share links and forks, one field changed from two tabs,
a browser without WebSocket (REST autosave, the conflict screen, a run followed by REST), the
profile and the reset link."""

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from conftest import PASSWORD, api, login, mail_link, new_context, register, shot, wait_saved, watch_errors

RUN = uuid.uuid4().hex[:8]
CAROL = f"carol-{RUN}@example.com"
GRACE = f"grace-{RUN}@example.com"
state = {}


@pytest.fixture(scope="module")
def carol(browser):
    ctx = new_context(browser)
    page = ctx.new_page()
    errors = []
    watch_errors(page, errors)
    register(page, CAROL, first="Carol", last="Shaw")
    yield page
    ctx.close()
    assert not errors, f"errors in the page: {errors}"


def node(page, name):
    return page.locator(f'svg.canvas .node[data-name="{name}"]')


def test_undo_and_redo_with_the_keyboard(carol):
    page = carol
    page.goto("/projects")
    page.get_by_role("button", name="New project").click()
    page.get_by_label("Name", exact=True).fill(f"Empty {RUN}")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}$"))
    state["url"] = page.url
    # Keyboard only: the palette's buttons add a component where there is room.
    page.locator('.palette-item[data-kind="client"]').focus()
    page.keyboard.press("Enter")
    page.locator('.palette-item[data-kind="web_server"]').focus()
    page.keyboard.press("Enter")
    expect(node(page, "clients 1")).to_be_visible()
    expect(node(page, "web server 1")).to_be_visible()
    node(page, "clients 1").focus()
    page.keyboard.press("Enter")
    page.locator("#panel select[data-field='connect-to']").select_option("web server 1")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.locator('.edge[data-from="clients 1"][data-to="web server 1"]')).to_have_count(1)
    wait_saved(page)
    node(page, "web server 1").focus()
    page.keyboard.press("Delete")
    expect(node(page, "web server 1")).to_have_count(0)
    expect(page.locator(".edge")).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(node(page, "web server 1")).to_be_visible()
    expect(page.locator(".edge")).to_have_count(1)
    page.keyboard.press("Control+Shift+z")
    expect(node(page, "web server 1")).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(node(page, "web server 1")).to_be_visible()
    wait_saved(page)
    shot(page, "undo-redo")


def test_rollback_restores_an_older_version(carol):
    page = carol
    page.get_by_role("button", name="History").click()
    page.locator(".versions li").last.get_by_role("button").click()
    page.get_by_role("button", name=re.compile(r"Roll back to version 1")).click()
    expect(page.locator(".toast").filter(has_text="Rolled back")).to_be_visible()
    expect(page.locator("svg.canvas .node")).to_have_count(0)
    shot(page, "rolled-back")
    page.keyboard.press("Control+z")  # nothing to undo after a rollback: still empty
    expect(page.locator("svg.canvas .node")).to_have_count(0)
    page.reload()
    expect(page.locator("#problems-bar")).not_to_have_text("Checking…")
    expect(page.locator("svg.canvas .node")).to_have_count(0)


def test_export_then_import(carol, tmp_path):
    page = carol
    page.locator('.palette-item[data-kind="redis"]').click()
    expect(node(page, "redis cache 1")).to_be_visible()
    wait_saved(page)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export").click()
    path = tmp_path / "export.json"
    dl.value.save_as(path)
    doc = json.loads(path.read_text())
    assert "redis cache 1" in json.dumps(doc)
    page.goto("/projects")
    page.get_by_role("button", name="Import").click()
    page.get_by_label("A project export or an engine design (JSON)").set_input_files(str(path))
    page.get_by_label("Name (optional)").fill(f"Imported {RUN}")
    page.get_by_role("button", name="Import", exact=True).last.click()
    page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}$"))
    assert page.url != state["url"]
    expect(node(page, "redis cache 1")).to_be_visible()
    shot(page, "imported")


def test_trash_and_restore(carol):
    page = carol
    page.goto(state["url"])
    page.get_by_role("button", name="Move to trash").click()
    page.locator("dialog[open]").get_by_role("button", name="Move to trash").click()
    page.wait_for_url(re.compile(r".*/projects\?tab=trash$"))
    card = page.locator(".card.project", has_text=f"Empty {RUN}")
    expect(card).to_be_visible()
    shot(page, "trash")
    card.get_by_role("button", name="Restore").click()
    expect(card).to_have_count(0)
    page.get_by_role("tab", name="My projects").click()
    expect(page.locator(".card.project", has_text=f"Empty {RUN}")).to_be_visible()


def test_a_share_link_opens_read_only_and_forks(carol, browser):
    page = carol
    page.goto(state["url"])
    page.get_by_role("button", name="Share").click()
    page.get_by_label(re.compile("^Public")).check()
    expect(page.locator("dialog[open] .share-message")).to_contain_text("gallery")
    page.get_by_role("button", name="Create a link").click()
    url = page.locator("dialog[open] .link-url").input_value()
    assert "/links/" in url
    page.keyboard.press("Escape")
    # Someone else, signed in, opens the link.
    ctx = new_context(browser)
    dave = ctx.new_page()
    register(dave, f"dave-{RUN}@example.com", first="Dave", last="Cutler")
    dave.goto(url)
    expect(dave.locator("#readonly-banner")).to_contain_text("link")
    expect(node(dave, "redis cache 1")).to_be_visible()
    shot(dave, "link-read-only")
    dave.goto("/projects?tab=public")
    expect(dave.locator(".card.project", has_text=f"Empty {RUN}")).to_be_visible()
    dave.goto(url)
    dave.get_by_role("button", name="Fork").click()
    dave.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}$"))
    expect(dave.locator("#readonly-banner")).to_have_count(0)
    expect(node(dave, "redis cache 1")).to_be_visible()
    shot(dave, "forked")
    ctx.close()


def test_the_same_field_from_two_tabs_the_later_edit_wins_on_both(carol):
    page = carol
    page.goto(state["url"])
    expect(node(page, "redis cache 1")).to_be_visible()
    wait_saved(page)
    other = page.context.new_page()
    other.goto(state["url"])
    expect(node(other, "redis cache 1")).to_be_visible()
    wait_saved(other)
    node(other, "redis cache 1").locator(".node-box").click()
    node(page, "redis cache 1").locator(".node-box").click()
    other.locator('#panel input[data-field="hit_ratio"]').fill("0.5")
    wait_saved(other)
    expect(page.locator('#panel input[data-field="hit_ratio"]')).to_have_value("0.5")
    page.locator('#panel input[data-field="hit_ratio"]').fill("0.7")
    wait_saved(page)
    expect(other.locator('#panel input[data-field="hit_ratio"]')).to_have_value("0.7")
    expect(page.locator("#conflict")).to_have_count(0)
    other.close()
    page.reload()
    node(page, "redis cache 1").locator(".node-box").click()
    expect(page.locator('#panel input[data-field="hit_ratio"]')).to_have_value("0.7")
    shot(page, "same-field-later-wins")


@pytest.fixture(scope="module")
def grace(browser):
    """A browser without WebSocket: the editor has no live session there and saves by REST
    (autosave with If-Match, the conflict screen on 412). Every page of this context."""
    ctx = new_context(browser)
    ctx.add_init_script("delete window.WebSocket")
    page = ctx.new_page()
    errors = []
    watch_errors(page, errors)
    register(page, GRACE, first="Grace", last="Hopper")
    yield page
    ctx.close()
    assert not errors, f"errors in Grace's pages: {errors}"


def stored(page, pid):
    """The project as the service holds it (version, design)."""
    return api(page, "GET", f"/api/projects/{pid}")["project"]


def comp(design, name):
    return next(c for c in design["components"] if c["name"] == name)


def edit_field(page, component, field, value):
    node(page, component).locator(".node-box").click()
    page.locator(f'#panel input[data-field="{field}"]').fill(value)


def test_without_websocket_the_editor_autosaves_over_rest(grace):
    page = grace
    assert page.evaluate("typeof WebSocket") == "undefined"
    page.goto("/projects")
    page.get_by_role("button", name="New project").click()
    page.get_by_label("Three-tier web app").check()
    page.get_by_label("Name", exact=True).fill(f"Old browser {RUN}")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}$"))
    state["rest_url"] = page.url
    state["rest_pid"] = pid = page.url.rstrip("/").split("/")[-1]
    expect(node(page, "database")).to_be_visible()
    # No live session: no presence bar, and the status is the REST autosave's, not "Live".
    expect(page.locator("#presence")).to_have_count(0)
    status = page.locator("#save-status")
    expect(status).to_have_attribute("data-state", "saved")
    expect(status).to_have_text("Saved")
    before = stored(page, pid)
    edit_field(page, "database", "servers", "7")
    expect(status).to_have_attribute("data-state", re.compile(r"^(dirty|saving)$"))
    shot(page, "rest-unsaved")
    expect(status).to_have_attribute("data-state", "saved")
    expect(status).to_have_text("Saved")
    after = stored(page, pid)
    assert after["version"] > before["version"]
    assert comp(after["design"], "database")["servers"] == 7
    shot(page, "rest-saved")
    page.reload()
    expect(page.locator("#save-status")).to_have_text("Saved")
    edit = page.locator('#panel input[data-field="servers"]')
    node(page, "database").locator(".node-box").click()
    expect(edit).to_have_value("7")
    shot(page, "rest-reloaded")


def test_a_conflicting_save_from_a_second_tab_shows_the_conflict_screen(grace):
    """Two tabs without WebSocket start from one version and change the same field: the second
    save is refused (412) and the conflict screen lists the clash; merging keeps the chosen
    value and the other tab's change. Then again, taking theirs: mine goes to a copy."""
    a = grace
    pid = state["rest_pid"]
    a.goto(state["rest_url"])
    expect(node(a, "database")).to_be_visible()
    expect(a.locator("#save-status")).to_have_attribute("data-state", "saved")
    b = a.context.new_page()
    b_errors = []
    watch_errors(b, b_errors)
    b.goto(state["rest_url"])
    expect(node(b, "database")).to_be_visible()
    expect(b.locator("#save-status")).to_have_attribute("data-state", "saved")
    base = stored(a, pid)

    # B changes the database's servers and the api's replicas, and saves first.
    edit_field(b, "database", "servers", "12")
    edit_field(b, "api", "replicas", "3")
    expect(b.locator("#save-status")).to_have_attribute("data-state", "saved")
    theirs = stored(b, pid)
    assert theirs["version"] > base["version"]
    assert comp(theirs["design"], "database")["servers"] == 12
    shot(b, "conflict-b-saved-first")

    # A, still on the older version, changes the same field (one change: a second one could
    # race the autosave, due 0.8 s after the first): refused, the conflict screen.
    with a.expect_response(lambda r: r.request.method == "PATCH" and f"/api/projects/{pid}" in r.url) as refused:
        edit_field(a, "database", "servers", "9")
    assert refused.value.status == 412
    screen = a.locator("#conflict")
    expect(screen).to_be_visible()
    expect(a.locator("#save-status")).to_have_attribute("data-state", "conflict")
    expect(screen).to_contain_text(f"version {theirs['version']} was saved")
    expect(screen.locator(".clashes li")).to_have_text(["database: servers"])
    theirs_list, mine_list = screen.locator("section").nth(0), screen.locator("section").nth(1)
    expect(theirs_list).to_contain_text('Changed api: replicas')
    expect(theirs_list).to_contain_text('Changed database: servers')
    expect(mine_list).to_contain_text('Changed database: servers')
    expect(mine_list).not_to_contain_text("api")
    shot(a, "conflict-screen")
    # Nothing of A's was written.
    assert stored(a, pid)["version"] == theirs["version"]

    # Merge: A's value where both changed the servers, and B's replicas.
    screen.get_by_role("button", name="Merge: theirs plus my changes").click()
    expect(screen).to_have_count(0)
    expect(a.locator("#save-status")).to_have_attribute("data-state", "saved")
    merged = stored(a, pid)
    assert merged["version"] > theirs["version"]
    assert comp(merged["design"], "database")["servers"] == 9
    assert comp(merged["design"], "api")["replicas"] == 3
    node(a, "api").locator(".node-box").click()
    expect(a.locator('#panel input[data-field="replicas"]')).to_have_value("3")
    shot(a, "conflict-merged")

    # Again, the other way round: B (now behind) changes the same field, takes theirs.
    with b.expect_response(lambda r: r.request.method == "PATCH" and f"/api/projects/{pid}" in r.url) as refused:
        edit_field(b, "database", "servers", "15")
    assert refused.value.status == 412
    screen = b.locator("#conflict")
    expect(screen).to_be_visible()
    expect(screen.locator(".clashes li")).to_have_text(["database: servers"])
    shot(b, "conflict-screen-b")
    screen.get_by_role("button", name="Take theirs, save mine as a copy").click()
    expect(screen).to_have_count(0)
    expect(b.locator(".toast").filter(has_text="Your changes are in")).to_be_visible()
    expect(b.locator("#save-status")).to_have_attribute("data-state", "saved")
    node(b, "database").locator(".node-box").click()
    expect(b.locator('#panel input[data-field="servers"]')).to_have_value("9")
    shot(b, "conflict-took-theirs")
    kept = stored(b, pid)
    assert kept["version"] == merged["version"]
    assert comp(kept["design"], "database")["servers"] == 9
    copies = [p for p in api(b, "GET", "/api/projects?page_size=100")["projects"]
              if p["name"] == f"Old browser {RUN} (my copy)"]
    assert len(copies) == 1
    copy = stored(b, copies[0]["id"])
    assert comp(copy["design"], "database")["servers"] == 15
    b.close()
    assert not b_errors, f"errors in the second tab: {b_errors}"


def test_a_rest_save_behind_a_live_tab_shows_the_conflict_screen(grace, browser):
    """The same person, live in one browser (WebSocket) and in one without: the REST save is
    held back while the live edits are not a version yet (409, retried), refused once they are
    (412): the conflict screen. The merge then reaches the live tab as an edit."""
    a = grace
    pid = state["rest_pid"]
    a.goto(state["rest_url"])
    expect(node(a, "database")).to_be_visible()
    expect(a.locator("#save-status")).to_have_attribute("data-state", "saved")
    ctx = new_context(browser)
    b = ctx.new_page()
    b_errors = []
    watch_errors(b, b_errors)
    login(b, GRACE)
    b.goto(state["rest_url"])
    expect(node(b, "database")).to_be_visible()
    expect(b.locator("#save-status")).to_have_text("Live")
    base = stored(b, pid)

    edit_field(b, "database", "servers", "20")
    edit_field(b, "load balancer", "replicas", "2")
    wait_saved(b)
    shot(b, "live-tab-edited")
    # Live edits become a version within live_snapshot_s (10 s): until then A's save waits
    # (409 live_session, said once, retried), then it is refused (412).
    with a.expect_response(lambda r: r.request.method == "PATCH" and f"/api/projects/{pid}" in r.url
                           and r.status == 412, timeout=30_000):
        edit_field(a, "database", "servers", "11")
    screen = a.locator("#conflict")
    expect(screen).to_be_visible()
    assert a.locator(".toast", has_text="editing this project live").count() <= 1
    expect(a.locator(".toast-error")).to_have_count(0)
    expect(screen.locator(".clashes li")).to_have_text(["database: servers"])
    theirs = stored(a, pid)
    assert theirs["version"] > base["version"]
    assert comp(theirs["design"], "database")["servers"] == 20
    shot(a, "conflict-behind-live")
    screen.get_by_role("button", name="Merge: theirs plus my changes").click()
    expect(screen).to_have_count(0)
    expect(a.locator("#save-status")).to_have_attribute("data-state", "saved")
    merged = stored(a, pid)
    assert comp(merged["design"], "database")["servers"] == 11
    assert comp(merged["design"], "load balancer")["replicas"] == 2
    # The live tab sees the merged design as it is saved.
    node(b, "database").locator(".node-box").click()
    expect(b.locator('#panel input[data-field="servers"]')).to_have_value("11")
    shot(b, "live-tab-sees-the-merge")
    # Live, "Save version" names the live document as it stands.
    b.get_by_role("button", name="Save version").click()
    b.locator("dialog[open]").get_by_label("Description").fill("after the merge")
    b.locator("dialog[open]").get_by_role("button", name="Save", exact=True).click()
    expect(b.locator(".toast", has_text="Saved version")).to_be_visible()
    newest = api(b, "GET", f"/api/projects/{pid}/versions?page_size=1")["versions"][0]
    assert newest["named"] and newest["message"] == "after the merge"
    named = api(b, "GET", f"/api/projects/{pid}/versions/{newest['version']}")
    assert comp(named["design"], "database")["servers"] == 11
    shot(b, "live-named-version")
    ctx.close()
    assert not b_errors, f"errors in the live tab: {b_errors}"


def test_without_websocket_a_run_ends_with_its_results(grace):
    """No stream in such a browser: the dock says so, follows the run by REST and shows the
    results when it ends (pressing Run used to throw: `new WebSocket` undefined)."""
    page = grace
    design = {"duration_s": 30, "components": [
        {"name": "clients", "kind": "client", "traffic": {"type": "open", "rate": 20}},
        {"name": "api", "kind": "service"}], "connections": [{"from": "clients", "to": "api"}]}
    pid = api(page, "POST", "/api/projects", {"name": f"Old browser run {RUN}", "design": design})["project"]["id"]
    page.goto(f"/projects/{pid}")
    expect(node(page, "api")).to_be_visible()
    page.locator("#open-run").click()
    page.locator("#run-speed").select_option("0")
    page.locator("#run-start").click()
    conn = page.locator("#run-conn")
    expect(conn).to_have_attribute("data-state", "unavailable")
    expect(conn).to_contain_text("no WebSocket")
    expect(page.locator("#run-dock")).to_have_attribute("data-status", "completed", timeout=15_000)
    expect(page.locator("#run-start")).to_be_enabled()
    shot(page, "rest-run-completed")
    page.locator("#run-tab-results").click()
    expect(page.locator("#components-table")).to_contain_text("api")
    expect(page.locator("#download-csv")).to_be_visible()
    shot(page, "rest-run-results")


def test_profile_and_password_reset(carol, browser):
    # Last: a reset ends every session of the account, this page's too.
    page = carol
    page.goto("/profile")
    page.get_by_label("First name").fill("Caroline")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".topbar .who")).to_have_text("Caroline")
    ctx = new_context(browser)
    anon = ctx.new_page()
    anon.goto("/forgot-password")
    anon.get_by_label("E-mail").fill(CAROL)
    anon.get_by_role("button", name="Send the link").click()
    expect(anon.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    anon.goto(mail_link(CAROL, "/reset-password"))
    new = PASSWORD + " renewed"
    anon.get_by_label("New password").fill(new)
    anon.get_by_label("The same again").fill(new)
    anon.get_by_role("button", name="Set the password").click()
    expect(anon.get_by_role("heading", name="Password changed")).to_be_visible()
    anon.goto("/login")
    anon.get_by_label("E-mail").fill(CAROL)
    anon.get_by_label("Password").fill(new)
    anon.get_by_role("button", name="Log in").click()
    anon.wait_for_url("**/projects")
    shot(anon, "after-reset")
    ctx.close()


def test_leaving_a_page_before_it_has_loaded_leaves_nothing_of_it(browser):
    """Navigating on while a view still loads: the later page is the only one on screen (the
    editor overtaken by the projects list neither draws into it nor keeps its session)."""
    ctx = new_context(browser)
    page = ctx.new_page()
    errors = []
    watch_errors(page, errors)
    register(page, f"hasty-{RUN}@example.com", first="Hasty", last="Reader")
    pid = api(page, "POST", "/api/projects", {"name": f"Overtaken {RUN}", "template_id": "three-tier-web-app"})["project"]["id"]
    page.goto("/projects")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.evaluate("""async (pid) => {
        const m = await import('/app/main.js');
        m.navigate(`/projects/${pid}`);
        m.navigate('/projects');
    }""", pid)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.wait_for_timeout(1500)
    expect(page.locator(".editor")).to_have_count(0)
    expect(page.locator("#main .view")).to_have_count(1)
    ctx.close()
    assert not errors, f"errors in the page: {errors}"
