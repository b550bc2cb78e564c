"""The console end to end, in the order a person goes: register and verify, create from a
template, draw, see a problem and fix it, rename and read the diff, reload, share read-only,
and edit from a second tab at once. The steps share one stack and build on each other."""

import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from conftest import api, login, mail_link, new_context, register, shot, verify, wait_saved, watch_errors

RUN = uuid.uuid4().hex[:8]
ALICE = f"alice-{RUN}@example.com"
BOB = f"bob-{RUN}@example.com"
NEW = "generic service 1"
state = {}


@pytest.fixture(scope="module")
def alice(browser):
    ctx = new_context(browser)
    page = ctx.new_page()
    errors = []
    watch_errors(page, errors)
    yield page
    ctx.close()
    assert not errors, f"errors in the page: {errors}"


def node(page, name):
    return page.locator(f'svg.canvas .node[data-name="{name}"]')


def leave_until_saved(page, holds, away=None, timeout=15):
    """Live edits become a version every few seconds while edited and when the last person
    leaves: leave, wait for the newest version to hold what `holds` checks, call `away(pid)`
    (nobody is in the live session then), come back."""
    url = page.url
    pid = url.rstrip("/").split("/")[-1]
    page.goto("/projects")
    deadline = time.time() + timeout
    while True:
        newest = api(page, "GET", f"/api/projects/{pid}/versions?page_size=1")["versions"][0]["version"]
        v = api(page, "GET", f"/api/projects/{pid}/versions/{newest}")
        if holds(v["design"]):
            break
        assert time.time() < deadline, f"no version of {pid} holds the live edits"
        time.sleep(0.3)
    if away:
        away(pid)
    page.goto(url)
    wait_saved(page)


def named_version(page, message):
    """What the project holds now as a named version, through the REST API while nobody is
    in the live session (live snapshots are autosaves, which replace each other)."""
    def save(pid):
        p = api(page, "GET", f"/api/projects/{pid}")["project"]
        layout = {**(p["layout"] or {}), "named_save": {"message": message}}
        api(page, "PATCH", f"/api/projects/{pid}", {"design": p["design"], "layout": layout, "named": True, "message": message},
            {"If-Match": f'"{p["version"]}"'})
    return save


def test_register_verify_and_log_in(alice):
    page = alice
    register(page, ALICE)
    shot(page, "registered")
    link = mail_link(ALICE, "/verify-email")
    page.goto(link)
    expect(page.locator("#verify")).to_contain_text("verified")
    shot(page, "verified")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    login(page, ALICE)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.goto("/profile")
    expect(page.locator(".badge.ok")).to_have_text("verified")
    shot(page, "logged-in")


def test_create_from_template(alice):
    page = alice
    page.goto("/projects")
    page.get_by_role("button", name="New project").click()
    page.get_by_label("Three-tier web app").check()
    expect(page.locator(".template-preview svg")).to_be_visible()
    shot(page, "template-preview")
    page.get_by_label("Name", exact=True).fill(f"Shop {RUN}")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}$"))
    state["url"] = page.url
    for n in ["browsers", "load balancer", "web", "api", "database"]:
        expect(node(page, n)).to_be_visible()
    # The analytic preview colours each component by its predicted utilisation.
    expect(node(page, "database")).to_have_class(re.compile(r"util-(low|mid|high|over)"))
    wait_saved(page)
    shot(page, "editor-from-template")


def test_drag_a_component_and_connect_it(alice):
    page = alice
    item = page.locator('.palette-item[data-kind="service"]')
    canvas = page.locator("svg.canvas")
    box = canvas.bounding_box()
    item.drag_to(canvas, target_position={"x": box["width"] * 0.5, "y": box["height"] - 90})
    expect(node(page, NEW)).to_be_visible()
    # Draw an edge: from the api's port to the new component.
    port = node(page, "api").locator(".port")
    pb = port.bounding_box()
    nb = node(page, NEW).locator(".node-box").bounding_box()
    page.mouse.move(pb["x"] + pb["width"] / 2, pb["y"] + pb["height"] / 2)
    page.mouse.down()
    page.mouse.move(nb["x"] + 40, nb["y"] + 20, steps=8)
    page.mouse.move(nb["x"] + nb["width"] / 2, nb["y"] + nb["height"] / 2, steps=4)
    page.mouse.up()
    expect(page.locator(f'svg.canvas .edge[data-from="api"][data-to="{NEW}"]')).to_have_count(1)
    wait_saved(page)
    shot(page, "dragged-and-connected")


def test_a_validation_problem_shows_on_the_component_and_goes_when_fixed(alice):
    page = alice
    node(page, NEW).locator(".node-box").click()
    servers = page.locator('#panel input[data-field="servers"]')
    servers.fill("0")
    expect(node(page, NEW).locator(".problem-badge")).to_be_visible()
    expect(page.locator("#panel .problems")).to_contain_text("servers")
    expect(page.locator("#problems-bar")).to_contain_text("problem")
    shot(page, "validation-problem")
    servers.fill("4")
    expect(node(page, NEW).locator(".problem-badge")).to_have_count(0)
    expect(page.locator("#problems-bar")).to_have_text("Valid design")
    wait_saved(page)
    shot(page, "validation-fixed")


def test_rename_reads_as_a_rename_in_the_diff(alice):
    page = alice
    # Live, Save version names the live document (the server saves it); here the named
    # version is made through REST while nobody edits, so no live autosave lands between.
    expect(page.locator("#save-version")).to_be_enabled()
    leave_until_saved(page, lambda d: any(c["name"] == NEW and c.get("servers") == 4 for c in d["components"]),
                      away=named_version(page, "before the rename"))
    node(page, NEW).locator(".node-box").click()
    page.locator('#panel input[data-field="name"]').fill("audit")
    expect(node(page, "audit")).to_be_visible()
    wait_saved(page)
    leave_until_saved(page, lambda d: any(c["name"] == "audit" for c in d["components"]))
    page.get_by_role("button", name="History").click()
    diff = page.locator(".version-detail .diff")
    expect(diff.locator(".chg-renamed")).to_contain_text(f"Renamed {NEW} to audit")
    expect(diff.locator(".chg-added")).to_have_count(0)
    expect(diff.locator(".chg-removed")).to_have_count(0)
    expect(page.locator(".diff-mini .d-renamed")).to_have_count(1)
    shot(page, "diff-rename")
    page.keyboard.press("Escape")


def test_reload_finds_everything_saved(alice):
    page = alice
    page.reload()
    expect(node(page, "audit")).to_be_visible()
    expect(node(page, NEW)).to_have_count(0)
    expect(page.locator('svg.canvas .edge[data-from="api"][data-to="audit"]')).to_have_count(1)
    node(page, "audit").locator(".node-box").click()
    expect(page.locator('#panel input[data-field="servers"]')).to_have_value("4")
    wait_saved(page)
    shot(page, "reloaded")


def test_shared_read_only_with_a_second_user(alice, browser):
    ctx = new_context(browser)
    bob = ctx.new_page()
    errors = []
    watch_errors(bob, errors)
    register(bob, BOB, first="Bob", last="Babbage")
    verify(bob, BOB)
    bob.goto("/projects")
    expect(bob.locator('body[data-ws="open"]')).to_have_count(1)
    page = alice
    page.get_by_role("button", name="Share").click()
    dlg = page.locator("dialog[open]")
    dlg.get_by_label("E-mail").fill(BOB)
    dlg.get_by_label("Access", exact=True).select_option("viewer")
    dlg.get_by_role("button", name="Share", exact=True).click()
    expect(dlg.locator(".share-message")).to_contain_text(f"shared with {BOB} as viewer")
    expect(dlg.locator(".people li")).to_have_count(2)
    shot(page, "shared")
    page.keyboard.press("Escape")
    # Bob hears of it at once (the notification socket), and finds it under "Shared with me".
    expect(bob.locator(".toast.notification")).to_contain_text("shared with you", timeout=10_000)
    shot(bob, "bob-notified")
    bob.goto("/projects?tab=shared")
    bob.get_by_role("link", name=f"Shop {RUN}").first.click()
    expect(bob.locator("#readonly-banner")).to_be_visible()
    expect(node(bob, "audit")).to_be_visible()
    expect(bob.locator('.palette-item[data-kind="service"]')).to_be_disabled()
    node(bob, "audit").locator(".node-box").click()
    expect(bob.locator('#panel input[data-field="name"]')).to_be_disabled()
    expect(bob.get_by_role("button", name="Undo")).to_have_count(0)
    shot(bob, "bob-read-only")
    bob.goto("/inbox")
    expect(bob.locator(".inbox li.unread")).to_contain_text(f"Shop {RUN}")
    bob.get_by_role("button", name="Mark all as read").click()
    expect(bob.locator(".inbox li.unread")).to_have_count(0)
    expect(bob.locator(".bell .count")).to_be_hidden()
    shot(bob, "bob-inbox")
    ctx.close()
    assert not errors, f"errors in Bob's page: {errors}"


def test_a_second_tab_edits_at_the_same_time(alice):
    """Live: each tab sees the other's change as it is made, and both are kept (no conflict
    screen: the server orders the edits)."""
    page = alice
    page.goto(state["url"])
    expect(node(page, "api")).to_be_visible()
    wait_saved(page)
    other = page.context.new_page()
    other.goto(state["url"])
    expect(node(other, "api")).to_be_visible()
    wait_saved(other)
    node(other, "api").locator(".node-box").click()
    other.locator('#panel input[data-field="replicas"]').fill("3")
    node(page, "database").locator(".node-box").click()
    page.locator('#panel input[data-field="servers"]').fill("20")
    wait_saved(other)
    wait_saved(page)
    expect(page.locator("#conflict")).to_have_count(0)
    # Each sees the other's change in its panel (the selection stays where it was).
    node(page, "api").locator(".node-box").click()
    expect(page.locator('#panel input[data-field="replicas"]')).to_have_value("3")
    node(other, "database").locator(".node-box").click()
    expect(other.locator('#panel input[data-field="servers"]')).to_have_value("20")
    shot(other, "second-tab-live")
    other.close()
    page.reload()
    node(page, "database").locator(".node-box").click()
    expect(page.locator('#panel input[data-field="servers"]')).to_have_value("20")
    node(page, "api").locator(".node-box").click()
    expect(page.locator('#panel input[data-field="replicas"]')).to_have_value("3")
    shot(page, "both-tabs-kept")
