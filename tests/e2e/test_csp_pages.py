"""The API docs and the dashboard under their Content-Security-Policy, in a real browser
(Debian's `chromium` driven by Playwright) against a real server: both pages work, the browser
reports no policy violation, and no request leaves the server's origin. The docs' "Authorize"
(OAuth2 password flow) still signs in and "Try it out" then reaches a protected route.

Without chromium these tests skip, except with CI=true, where they fail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from globeguard.web.docs import DOCS_ASSETS
from globeguard.web.routes import DIST
from tests.e2e.harness import WATCH_VIOLATIONS, launched_browser, live_server, require

playwright = pytest.importorskip("playwright.sync_api")

PASSWORD = "csp-admin-Passw0rd!"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    require(DIST / "index.html", DOCS_ASSETS / "swagger-init.js")
    with live_server(tmp_path_factory.mktemp("csp"), PASSWORD) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server) -> Iterator[object]:
    with launched_browser() as instance:
        yield instance


class Watched:
    def __init__(self, page, origin: str) -> None:
        self.page = page
        self.foreign: list[str] = []
        page.add_init_script(WATCH_VIOLATIONS)
        page.on("request", self._request)
        self.origin = origin

    def _request(self, request) -> None:
        url: str = request.url
        if not (url.startswith(self.origin + "/") or url.startswith("data:")):
            self.foreign.append(url)

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__violations"))


@pytest.fixture
def watched(browser, server) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
    page = context.new_page()
    yield Watched(page, server)
    context.close()


def test_docs_render_and_authorize_under_a_strict_policy(watched):
    page = watched.page
    assert "script-src 'self';" in page.goto("/docs").headers["content-security-policy"]
    page.wait_for_selector(".opblock", timeout=20_000)

    page.get_by_role("button", name="Authorize").first.click()
    oauth = page.locator(".modal-ux .auth-container").first  # the OAuth2 one, then ApiKey
    oauth.locator("#oauth_username").fill("admin")
    oauth.locator("#oauth_password").fill(PASSWORD)
    oauth.locator("button.authorize").click()
    oauth.get_by_text("Logout", exact=True).wait_for(timeout=10_000)  # signed in
    oauth.locator("button.btn-done").click()

    operation = page.locator("#operations-users-read_me_api_v1_users_me_get")
    if operation.count() == 0:  # the operation id is FastAPI's; find it by its path instead
        operation = page.locator(".opblock-get", has_text="/api/v1/users/me").first
    operation.locator(".opblock-summary").first.click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=10_000)
    assert status.inner_text().strip().startswith("200")

    assert watched.violations() == []
    assert watched.foreign == []


def test_dashboard_works_under_a_strict_policy(watched):
    page = watched.page
    response = page.goto("/dashboard/")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    for part in ("map", "top"):  # a new server has no sign-ins to show: empty, not error
        settled = ", ".join(
            f'[data-testid="{part}"][data-status="{status}"]' for status in ("ready", "empty")
        )
        page.wait_for_selector(settled, timeout=20_000)
    assert page.locator(".leaflet-container").count() == 1
    assert page.locator('[data-testid="top"] canvas').count() == 1  # Chart.js drew
    assert watched.violations() == []
    assert watched.foreign == []
