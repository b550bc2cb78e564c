"""The rest of what a person does with projects: undo and redo with the keyboard, rollback,
export and import, trash and restore, share links and forks, one field changed from two tabs,
the profile and the reset link."""

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from conftest import PASSWORD, api, mail_link, new_context, register, shot, wait_saved, watch_errors

RUN = uuid.uuid4().hex[:8]
CAROL = f"carol-{RUN}@example.com"
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
