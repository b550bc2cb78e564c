"""The page's session over time: it refreshes its access token before it expires (run.sh gives
tokens a short life: SDSIM_AUTH__ACCESS_TTL_SECONDS), its notification socket, closed by the
server at the token's expiry (4009), comes back by itself, and one lost to the network or
dropped under the page comes back too, with what arrived meanwhile counted on the bell."""

import base64
import json
import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from conftest import api, new_context, register, shot, verify, watch_errors

RUN = uuid.uuid4().hex[:8]
IVY = f"ivy-{RUN}@example.com"
SAM = f"sam-{RUN}@example.com"
# auth.leeway_seconds: a token is still accepted this long after its exp.
LEEWAY = 5
TINY = {"duration_s": 30, "components": [
    {"name": "clients", "kind": "client", "traffic": {"type": "open", "rate": 10}},
    {"name": "api", "kind": "service"}], "connections": [{"from": "clients", "to": "api"}]}


@pytest.fixture(scope="module")
def people(browser):
    """Ivy, watched (her refreshes, 401s, notification sockets, the addresses she is sent
    to), and Sam, who shares projects with her. Own contexts."""
    out, contexts, errors = {}, [], []
    for who, email, first in [("ivy", IVY, "Ivy"), ("sam", SAM, "Sam")]:
        ctx = new_context(browser)
        contexts.append(ctx)
        page = ctx.new_page()
        watch_errors(page, errors)
        register(page, email, first=first, last="Session")
        verify(page, email)
        out[who] = page
    ivy = out["ivy"]
    seen = out["seen"] = {"refresh": [], "401": [], "opened": [], "closed": [], "urls": []}

    def on_socket(ws):
        if ws.url.endswith("/ws/notifications"):
            seen["opened"].append(time.time())
            ws.on("close", lambda _: seen["closed"].append(time.time()))

    ivy.on("request", lambda r: seen["refresh"].append(time.time()) if r.url.endswith("/api/auth/refresh") else None)
    ivy.on("response", lambda r: seen["401"].append(r.url) if r.status == 401 else None)
    ivy.on("websocket", on_socket)
    ivy.on("framenavigated", lambda f: seen["urls"].append(f.url) if f == ivy.main_frame else None)
    yield out
    for ctx in contexts:
        ctx.close()
    # Offline, the browser logs the requests it could not send.
    errors = [e for e in errors if "ERR_INTERNET_DISCONNECTED" not in e]
    assert not errors, f"errors in the pages: {errors}"


def token(page):
    return page.evaluate("async () => (await import('/app/api.js')).token()")


def exp(tok):
    payload = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def share(sam, name):
    """Sam makes a project and shares it with Ivy (the service notifies her)."""
    pid = api(sam, "POST", "/api/projects", {"name": name, "design": TINY})["project"]["id"]
    api(sam, "POST", f"/api/projects/{pid}/shares", {"email": IVY, "role": "viewer"})


def notified(page, name):
    return page.locator(".toast.notification", has_text=name)


def test_the_token_is_refreshed_before_it_expires_and_the_socket_comes_back(people):
    page, sam, seen = people["ivy"], people["sam"], people["seen"]
    page.goto("/projects")
    expect(page.locator('body[data-ws="open"]')).to_have_count(1)
    first = token(page)
    expires = exp(first)
    if expires - time.time() > 60:
        pytest.skip("needs short-lived access tokens (run.sh sets SDSIM_AUTH__ACCESS_TTL_SECONDS)")
    sockets = len(seen["opened"])
    del seen["refresh"][:], seen["401"][:]
    # Past the first token's life and the leeway: it is refused everywhere by now. The page's
    # own timers run meanwhile (Playwright's wait, not a sleep, so the events are recorded
    # as they happen).
    page.wait_for_timeout((expires + LEEWAY + 1 - time.time()) * 1000)
    now = token(page)
    assert now != first and exp(now) > expires
    # Refreshed by the timer before the token ran out, not after a refused request.
    assert seen["refresh"] and seen["refresh"][0] < expires, (seen["refresh"], expires)
    # The server closed the notification socket at the expiry (4009) and the page opened
    # another with its fresh token.
    assert any(t >= expires - 1 for t in seen["closed"]), (seen["closed"], expires)
    assert len(seen["opened"]) > sockets
    expect(page.locator('body[data-ws="open"]')).to_have_count(1)
    shot(page, "session-after-expiry")

    # The API works on: a project from a template, the list of projects.
    name = f"After expiry {RUN}"
    page.get_by_role("button", name="New project").click()
    page.get_by_label("Three-tier web app").check()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}$"))
    expect(page.locator("#save-status")).to_have_text("Live")
    page.locator("#topbar").get_by_role("link", name="Projects").click()
    expect(page.get_by_role("link", name=name).first).to_be_visible()
    # Notifications still arrive.
    share(sam, f"Shared after expiry {RUN}")
    expect(notified(page, f"Shared after expiry {RUN}")).to_contain_text("shared with you")
    shot(page, "session-notified-after-expiry")
    # No request was refused for an expired token, and nothing sent the page to sign in.
    assert not seen["401"], seen["401"]
    assert not any("/login" in u for u in seen["urls"]), seen["urls"]


def test_the_notification_socket_comes_back_after_a_lost_network(people):
    page, sam = people["ivy"], people["sam"]
    ctx = page.context
    expect(page.locator('body[data-ws="open"]')).to_have_count(1)
    count = page.locator(".bell .count")
    unread = int(count.text_content() or 0)
    ctx.set_offline(True)
    expect(page.locator('body[data-ws="open"]')).to_have_count(0)
    share(sam, f"While offline {RUN}")
    page.wait_for_timeout(500)
    shot(page, "notify-offline")
    ctx.set_offline(False)
    # Back at once (the online event), and the bell counts what came meanwhile.
    expect(page.locator('body[data-ws="open"]')).to_have_count(1, timeout=5_000)
    expect(count).to_have_text(str(unread + 1))
    expect(notified(page, f"While offline {RUN}")).to_have_count(0)
    share(sam, f"Back online {RUN}")
    expect(notified(page, f"Back online {RUN}")).to_be_visible()
    expect(count).to_have_text(str(unread + 2))
    # Dropped under the page (as a dead connection would be): back by itself.
    page.evaluate("window.sdsimDebug.dropNotify()")
    expect(page.locator('body[data-ws="open"]')).to_have_count(0)
    expect(page.locator('body[data-ws="open"]')).to_have_count(1, timeout=5_000)
    share(sam, f"After a drop {RUN}")
    expect(notified(page, f"After a drop {RUN}")).to_be_visible()
    expect(count).to_have_text(str(unread + 3))
    shot(page, "notify-back")
    page.locator(".bell").click()
    inbox = page.locator(".inbox li.unread")
    for name in (f"While offline {RUN}", f"Back online {RUN}", f"After a drop {RUN}"):
        expect(inbox.filter(has_text=name)).to_have_count(1)
    shot(page, "notify-inbox")


def test_log_out_ends_the_session_in_every_tab_even_when_the_token_has_lapsed(browser):
    """The server ends the session (its refresh cookie cleared) even when the first logout
    call meets a lapsed token: the page refreshes and asks again. Every tab leaves it."""
    ctx = new_context(browser)
    errors = []
    a = ctx.new_page()
    watch_errors(a, errors)
    register(a, f"leo-{RUN}@example.com", first="Leo", last="Tabs")
    b = ctx.new_page()
    watch_errors(b, errors)
    b.goto("/projects")
    expect(b.get_by_role("button", name="Log out")).to_be_visible()
    lapsed = []

    def first_lapses(route):
        if not lapsed:
            lapsed.append(1)
            route.fulfill(status=401, content_type="application/json",
                          body='{"error": {"code": "token_expired", "message": "the token has expired"}}')
        else:
            route.continue_()

    a.route("**/api/auth/logout", first_lapses)
    a.get_by_role("button", name="Log out").click()
    a.wait_for_url("**/login")
    assert lapsed, "the logout call was not made"
    # The other tab heard of it (sent to sign in, back to where it was after).
    to_login = re.compile(r".*/login(\?next=.*)?$")
    b.wait_for_url(to_login)
    # And the server's session is over: a new tab is not signed in by the cookie.
    c = ctx.new_page()
    watch_errors(c, errors)
    c.goto("/projects")
    c.wait_for_url(to_login)
    shot(c, "logged-out-everywhere")
    ctx.close()
    assert not errors, f"errors in the pages: {errors}"
