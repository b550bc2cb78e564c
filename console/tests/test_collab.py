"""Live collaboration end to end: an owner and an editor on one design at once (each sees the
other's additions and moves as they happen, their chips, pointers and selections; undo takes
back one's own edit only; an edit made offline is sent when back), and a viewer who watches it
live, cannot edit, and is told when the owner stops sharing."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from conftest import api, new_context, register, shot, verify, wait_saved, watch_errors

RUN = uuid.uuid4().hex[:8]


def node(page, name):
    return page.locator(f'svg.canvas .node[data-name="{name}"]')


@pytest.fixture(scope="module")
def people(browser):
    """Three signed-in pages (own contexts) and their user ids."""
    out, contexts, errors = {}, [], []
    for who, first in [("owner", "Olga"), ("editor", "Erik"), ("viewer", "Vera")]:
        ctx = new_context(browser)
        contexts.append(ctx)
        page = ctx.new_page()
        watch_errors(page, errors)
        email = f"{who}-{RUN}@example.com"
        register(page, email, first=first, last="Live")
        verify(page, email)
        page.goto("/projects")
        out[who] = {"page": page, "email": email, "id": api(page, "GET", "/api/auth/profile")["user"]["id"]}
    yield out
    for ctx in contexts:
        ctx.close()
    # Offline, the browser logs the requests it could not send (the validation's).
    errors = [e for e in errors if "ERR_INTERNET_DISCONNECTED" not in e]
    assert not errors, f"errors in the pages: {errors}"


def test_two_people_edit_one_design_and_a_viewer_watches(people):
    owner, editor, viewer = (people[k]["page"] for k in ("owner", "editor", "viewer"))
    design = {"duration_s": 30, "components": [
        {"name": "clients", "kind": "client", "traffic": {"type": "open", "rate": 50}},
        {"name": "api", "kind": "service"}], "connections": [{"from": "clients", "to": "api"}]}
    pid = api(owner, "POST", "/api/projects", {"name": f"Together {RUN}", "design": design})["project"]["id"]
    for who, role in [("editor", "editor"), ("viewer", "viewer")]:
        api(owner, "POST", f"/api/projects/{pid}/shares", {"email": people[who]["email"], "role": role})
    url = f"/projects/{pid}"
    for page in (owner, editor):
        page.goto(url)
        expect(node(page, "api")).to_be_visible()
        expect(page.locator("#save-status")).to_have_text("Live")

    # Each sees the other's chip.
    expect(owner.locator(f'#presence .peer-chip[data-user="{people["editor"]["id"]}"]')).to_be_visible()
    expect(editor.locator(f'#presence .peer-chip[data-user="{people["owner"]["id"]}"]')).to_be_visible()

    # The owner adds a component: the editor sees it.
    owner.locator('.palette-item[data-kind="redis"]').click()
    expect(node(editor, "redis cache 1")).to_be_visible()

    # The editor drags it: the owner sees it where the editor dropped it, the editor's pointer,
    # and the component outlined as the editor's selection.
    box = node(editor, "redis cache 1").locator(".node-box").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    editor.mouse.move(x, y)
    editor.mouse.down()
    editor.mouse.move(x + 60, y + 40, steps=5)
    editor.mouse.move(x + 140, y + 70, steps=5)
    editor.mouse.up()
    moved = node(editor, "redis cache 1").get_attribute("transform")
    expect(node(owner, "redis cache 1")).to_have_attribute("transform", moved)
    expect(owner.locator(f'svg.canvas .remote-pointer[data-user="{people["editor"]["id"]}"]')).to_have_count(1)
    expect(node(owner, "redis cache 1")).to_have_class(re.compile(r"\bpeer-selected\b"))
    # ...and the other way round: the owner's pointer on the editor's canvas.
    canvas = owner.locator("svg.canvas").bounding_box()
    owner.mouse.move(canvas["x"] + 40, canvas["y"] + 40)
    owner.mouse.move(canvas["x"] + 80, canvas["y"] + 60, steps=3)
    expect(editor.locator(f'svg.canvas .remote-pointer[data-user="{people["owner"]["id"]}"]')).to_have_count(1)
    wait_saved(editor)
    shot(owner, "collab-owner-sees-editor")

    # The viewer watches: read only, and the owner's next change shows at once.
    viewer.goto(url)
    expect(viewer.locator("#readonly-banner")).to_be_visible()
    expect(viewer.locator("#save-status")).to_have_text("Live · read only")
    expect(node(viewer, "redis cache 1")).to_have_attribute("transform", moved)
    expect(viewer.locator('.palette-item[data-kind="service"]')).to_be_disabled()
    expect(viewer.get_by_role("button", name="Undo")).to_have_count(0)
    node(viewer, "api").locator(".node-box").click()
    expect(viewer.locator('#panel input[data-field="name"]')).to_be_disabled()
    viewer.keyboard.press("Delete")
    expect(owner.locator(f'#presence .peer-chip[data-user="{people["viewer"]["id"]}"]')).to_be_visible()
    node(owner, "api").locator(".node-box").click()
    owner.locator('#panel input[data-field="replicas"]').fill("3")
    node(viewer, "api").locator(".node-box").click()
    expect(viewer.locator('#panel input[data-field="replicas"]')).to_have_value("3")
    expect(node(viewer, "api")).to_be_visible()  # the viewer's Delete did nothing
    shot(viewer, "collab-viewer-watches")

    # Undo takes back one's own edit only: the editor's move, not the owner's changes.
    editor.locator("svg.canvas").focus()
    editor.keyboard.press("Control+z")
    expect(node(owner, "redis cache 1")).not_to_have_attribute("transform", moved)
    expect(node(owner, "redis cache 1")).to_be_visible()
    node(editor, "api").locator(".node-box").click()
    expect(editor.locator('#panel input[data-field="replicas"]')).to_have_value("3")
    wait_saved(editor)
    wait_saved(owner)
    shot(editor, "collab-editor-undid-own-move")


def test_an_edit_made_offline_is_sent_when_back(people):
    owner, editor = people["owner"]["page"], people["editor"]["page"]
    editor.context.set_offline(True)
    expect(editor.locator("#save-status")).to_have_text("Offline: edits will be sent when back")
    node(editor, "api").locator(".node-box").click()
    editor.locator('#panel input[data-field="servers"]').fill("7")
    expect(editor.locator("#save-status")).to_have_attribute("data-state", "offline")
    editor.context.set_offline(False)
    wait_saved(editor)
    node(owner, "api").locator(".node-box").click()
    expect(owner.locator('#panel input[data-field="servers"]')).to_have_value("7")


def test_a_viewer_whose_share_ends_is_told(people):
    owner, viewer = people["owner"]["page"], people["viewer"]["page"]
    pid = owner.url.rstrip("/").split("/")[-1]
    api(owner, "DELETE", f"/api/projects/{pid}/shares?user_id={people['viewer']['id']}")
    expect(viewer.locator("#live-banner")).to_contain_text("no longer available")
    expect(viewer.locator("#save-status")).to_have_text("Not live")
    expect(owner.locator(f'#presence .peer-chip[data-user="{people["viewer"]["id"]}"]')).to_have_count(0)
    shot(viewer, "collab-viewer-share-ended")
