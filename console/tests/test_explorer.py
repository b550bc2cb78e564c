"""The API explorer at /api/docs/: Swagger UI from the binary (nothing fetched from elsewhere,
under the page's CSP) showing every area of /api/openapi.json."""

from playwright.sync_api import expect

from conftest import BASE, new_context, shot, watch_errors


def test_the_api_explorer_works_offline(browser):
    ctx = new_context(browser)
    page = ctx.new_page()
    errors = []
    watch_errors(page, errors)
    # Any request that leaves this origin fails the test.
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(BASE) and not r.url.startswith("data:") else None)
    page.goto("/api/docs/")
    for tag in ["auth", "projects", "simulations", "notifications", "operations"]:
        expect(page.locator(f'.opblock-tag[data-tag="{tag}"]')).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/auth/login").first).to_be_visible()
    shot(page, "api-explorer")
    ctx.close()
    assert not outside, f"fetched from elsewhere: {outside}"
    assert not errors, f"errors in the page: {errors}"
