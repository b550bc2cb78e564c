"""Shared fixtures: one Chromium (Debian's), the running stack's URL, the mail outbox and
screenshots of each step."""

import email as email_parser
import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

BASE = os.environ.get("SDSIM_CONSOLE_URL", "http://127.0.0.1:8000")
OUTBOX = Path(os.environ.get("SDSIM_CONSOLE_OUTBOX", ".local/outbox"))
SHOTS = Path(os.environ.get("SDSIM_CONSOLE_SHOTS", "/tmp/console-shots"))
CHROMIUM = os.environ.get("SDSIM_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "a long enough passphrase 42"


@pytest.fixture(scope="session")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield b
        b.close()


_counter = [0]


def shot(page, name):
    """A screenshot of this step, numbered in the order the steps ran."""
    _counter[0] += 1
    page.screenshot(path=str(SHOTS / f"{_counter[0]:02d}-{name}.png"))


def new_context(browser):
    ctx = browser.new_context(base_url=BASE, viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(10_000)
    return ctx


def watch_errors(page, errors):
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: errors.append(m.text)
        if m.type == "error" and "status of 4" not in m.text
        else None,
    )


def mail_link(email, path, timeout=15):
    """The link to `path` in the newest mail the outbox holds for `email`."""
    deadline = time.time() + timeout
    pattern = re.compile(r"https?://[^\s\"'<>]*" + re.escape(path) + r"\?token=[A-Za-z0-9_\-%.=]+")
    while time.time() < deadline:
        files = sorted(OUTBOX.glob("**/*.eml"), key=lambda f: f.stat().st_mtime, reverse=True)
        for f in files:
            msg = email_parser.message_from_bytes(f.read_bytes())
            if email.lower() not in (msg["To"] or "").lower():
                continue
            text = msg.get_payload(decode=True).decode("utf-8", "replace")
            if True:
                m = pattern.search(text)
                if m:
                    return m.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no mail with a {path} link for {email} in {OUTBOX}")


def register(page, email, first="Ada", last="Lovelace"):
    page.goto("/register")
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill(last)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.locator("#registered").wait_for()


def verify(page, email):
    """Follows the verification link registering sent to `email` (a share with an account
    applies at once only when its address is verified)."""
    page.goto(mail_link(email, "/verify-email"))
    expect(page.locator("#verify")).to_contain_text("verified")


def login(page, email):
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/projects")


def wait_saved(page, timeout=10_000):
    """Everything this page changed is stored: "Saved" (REST autosave) or, in a live session,
    "Live" with no edit on its way (data-state live)."""
    expect(page.locator("#save-status")).to_have_attribute("data-state", re.compile(r"^(saved|live)$"), timeout=timeout)


def api(page, method, path, body=None, headers=None):
    """An API call from the page, with its session (the access token lives in the page only,
    and is there once the page is ready)."""
    page.locator("body[data-ready]").wait_for(state="attached")
    return page.evaluate(
        "async ([m, p, b, h]) => { const a = await import('/app/api.js');"
        " return a.api(m, p, b === null ? undefined : b, { headers: h || {} }); }",
        [method, path, body, headers],
    )
