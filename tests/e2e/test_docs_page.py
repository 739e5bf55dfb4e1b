"""The API docs page offline, in a real browser (Debian's `chromium` driven by Playwright)
against a real server: every request that is not to the loopback server is aborted, as on a
machine with no internet. Swagger UI still renders the operations under the page's strict
Content-Security-Policy, and both ways its "Authorize" button offers (the OAuth2 password flow
of the Bearer scheme, and an X-API-KEY) reach a protected route through "Try it out".
Screenshots go to `test-artifacts/docs/`.

Without chromium these tests skip, except with CI=true, where they fail."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from globeguard.web.docs import DOCS_ASSETS
from tests.e2e.harness import ROOT, WATCH_VIOLATIONS, launched_browser, live_server, require

playwright = pytest.importorskip("playwright.sync_api")

ARTIFACTS = ROOT / "test-artifacts" / "docs"
PASSWORD = "docs-admin-Passw0rd!"
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
ME = "/api/v1/users/me"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    require(DOCS_ASSETS / "swagger-init.js")
    with live_server(tmp_path_factory.mktemp("docs"), PASSWORD) as base:
        yield base


@pytest.fixture(scope="module")
def api_key(server) -> str:
    """The admin's API key, made through the API as a user would."""
    tokens = httpx.post(
        f"{server}/api/v1/auth/signin", json={"username": "admin", "password": PASSWORD}
    ).json()
    created = httpx.post(
        f"{server}/api/v1/api-keys",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        json={"name": "docs page"},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["api_key"])


@pytest.fixture(scope="module")
def browser(server) -> Iterator[object]:
    with launched_browser() as instance:
        yield instance


class OfflineDocs:
    """A /docs tab on a machine without internet: requests beyond loopback are aborted and
    kept, as are console errors and the policy violations the page reports."""

    def __init__(self, context) -> None:
        self.aborted: list[str] = []
        self.console_errors: list[str] = []
        context.route("**/*", self._route)
        context.add_init_script(WATCH_VIOLATIONS)
        self.page = context.new_page()
        self.page.on("console", self._console)

    def _route(self, route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            self.aborted.append(route.request.url)
            route.abort("internetdisconnected")

    def _console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def open(self) -> None:
        response = self.page.goto("/docs")
        assert response is not None and response.status == 200
        assert "script-src 'self';" in response.headers["content-security-policy"]
        self.page.wait_for_selector(".opblock", timeout=20_000)

    def operation(self, method: str, path: str):
        summary = f'.opblock-summary-path[data-path="{path}"]'
        return self.page.locator(f".opblock-{method}", has=self.page.locator(summary)).first

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__violations"))

    def assert_clean(self) -> None:
        assert self.aborted == []  # nothing even tried to leave the machine
        assert self.violations() == []
        assert self.console_errors == []

    def authorize(self, scheme: str, fill) -> None:
        """Opens "Authorize", fills the scheme's form with `fill`, and closes the dialog."""
        self.page.locator(".auth-wrapper .authorize").click()
        form = self.page.locator(".modal-ux .auth-container", has_text=scheme).first
        fill(form)
        form.locator("button.authorize").click()
        form.get_by_text("Logout", exact=True).wait_for(timeout=20_000)  # authorized
        self.page.locator(".modal-ux button.btn-done").first.click()

    def try_me(self) -> tuple[dict[str, str], str, str]:
        """Runs "Try it out" on GET /users/me: the headers the browser sent, the status and
        the body Swagger UI shows."""
        operation = self.operation("get", ME)
        operation.locator(".opblock-summary").first.click()
        operation.get_by_role("button", name="Try it out").click()
        with self.page.expect_request(lambda r: urlsplit(r.url).path == ME) as sent:
            operation.get_by_role("button", name="Execute").click()
        response = operation.locator(".live-responses-table .response").first
        response.locator(".response-col_status").wait_for(timeout=20_000)
        status = response.locator(".response-col_status").inner_text().strip()
        body = response.locator(".response-col_description").inner_text()
        response.scroll_into_view_if_needed()  # for the screenshot: the status and the body
        return sent.value.all_headers(), status, body

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)

    def storage(self) -> str:
        return str(self.page.evaluate("JSON.stringify([localStorage, sessionStorage])"))


@pytest.fixture
def docs(browser, server) -> Iterator[OfflineDocs]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
    yield OfflineDocs(context)
    context.close()


def test_the_operations_render_with_no_network_and_no_violation(docs):
    docs.open()
    signin = docs.operation("post", "/api/v1/auth/signin")
    signin.wait_for(timeout=20_000)
    assert "/api/v1/auth/signin" in signin.inner_text()
    # Both ways to authorize the document declares are offered.
    docs.page.locator(".auth-wrapper .authorize").click()
    dialog = docs.page.locator(".modal-ux")
    assert dialog.locator("#oauth_username").count() == 1  # Bearer: the password flow
    assert dialog.get_by_text("X-API-KEY").count() >= 1  # ApiKey
    docs.shot("authorize-dialog")
    docs.page.locator(".modal-ux .close-modal").click()
    docs.shot("operations")
    docs.assert_clean()


def test_authorize_by_password_then_try_it_out_sends_a_bearer_token(docs):
    docs.open()

    def sign_in(form) -> None:
        form.locator("#oauth_username").fill("admin")
        form.locator("#oauth_password").fill(PASSWORD)

    docs.authorize("Bearer", sign_in)
    headers, status, body = docs.try_me()
    assert headers.get("authorization", "").startswith("Bearer ey")
    assert "x-api-key" not in headers
    assert status.startswith("200")
    assert '"username": "admin"' in body
    docs.shot("try-it-out-bearer")
    # Neither the password nor the tokens are written to the browser's storage.
    stored = docs.storage()
    assert PASSWORD not in stored and "access_token" not in stored and "ggr_" not in stored
    docs.assert_clean()


def test_authorize_by_api_key_then_try_it_out_sends_it(docs, api_key):
    docs.open()
    docs.authorize("ApiKey", lambda form: form.locator("input").first.fill(api_key))
    headers, status, body = docs.try_me()
    assert headers.get("x-api-key") == api_key
    assert "authorization" not in headers
    assert status.startswith("200")
    assert '"username": "admin"' in body
    docs.shot("try-it-out-api-key")
    assert api_key not in docs.storage()
    docs.assert_clean()


def test_without_authorizing_try_it_out_shows_the_401(docs):
    docs.open()
    headers, status, _ = docs.try_me()
    assert "authorization" not in headers and "x-api-key" not in headers
    assert status.startswith("401")
    # The browser logs the 401 as a failed load: only the network and the policy are checked.
    assert docs.aborted == [] and docs.violations() == []
