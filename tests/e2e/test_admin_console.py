"""The admin console of the dashboard in a real browser (Debian's `chromium` driven by
Playwright) against a real server on a temporary SQLite database: 40 demo users to page
through, and `ada`, whose sign-ins from Paris then Tokyo an hour later (reported through
`POST /api/v1/login-events`) make an impossible journey. Every request must stay on loopback,
and the page's CSP must block nothing. Screenshots go to `test-artifacts/dashboard/`.

Without chromium these tests skip, except with CI=true, where they fail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from globeguard.web.routes import DIST
from tests.e2e.harness import launched_browser, live_server, require, watched_page
from tests.e2e.test_dashboard import shot

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

PASSWORD = "console-admin-Passw0rd!"
ADA_PASSWORD = "analytical-engine-1843"
# Addresses the bundled GeoLite2-City places in Paris and Tokyo.
PARIS, TOKYO = "88.160.133.1", "202.32.10.1"


@dataclass(frozen=True)
class Server:
    base: str
    admin: dict[str, str]
    ada_id: str


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    require(DIST / "index.html")
    env = {"GLOBEGUARD_TRAVEL__LEARNING_LOGINS": "0", "GLOBEGUARD_TRAVEL__LEARNING_PERIOD": "P0D"}
    seed = ["demo", "seed", "--users", "40", "--seed", "5"]
    with live_server(tmp_path_factory.mktemp("console"), PASSWORD, env, [seed]) as base:
        yield _with_ada(base)


def _with_ada(base: str) -> Server:
    body = {"username": "admin", "password": PASSWORD}
    tokens = httpx.post(f"{base}/api/v1/auth/signin", json=body).raise_for_status().json()
    admin = {"Authorization": f"Bearer {tokens['access_token']}"}
    ada = httpx.post(
        f"{base}/api/v1/auth/signup",
        json={
            "username": "ada",
            "password": ADA_PASSWORD,
            "email": "ada@example.com",
            "given_name": "Ada",
            "family_name": "Lovelace",
        },
    ).raise_for_status()
    key = httpx.post(
        f"{base}/api/v1/api-keys",
        headers=admin,
        json={"name": "idp", "scopes": ["login_events:write"]},
    ).raise_for_status()
    ingest = {"X-API-KEY": key.json()["api_key"]}
    start = datetime.now(UTC) - timedelta(hours=3)
    for n, (ip, at) in enumerate(((PARIS, start), (TOKYO, start + timedelta(hours=1)))):
        event = {"subject": "ada", "ip": ip, "occurred_at": at.isoformat(), "success": True}
        event["event_uuid"] = f"ada-{n}"
        httpx.post(f"{base}/api/v1/login-events", headers=ingest, json=event).raise_for_status()
    return Server(base, admin, ada.json()["user_id"])


def ada_signs_in(server: Server) -> dict[str, str]:
    body = {"username": "ada", "password": ADA_PASSWORD}
    response = httpx.post(f"{server.base}/api/v1/auth/signin", json=body).raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def browser(server) -> Iterator[object]:
    with launched_browser() as instance:
        yield instance


@pytest.fixture
def page(browser, server):
    with watched_page(browser, server.base, 1440, 900) as tab:
        yield tab


def sign_in(page, username: str = "admin", password: str = PASSWORD) -> None:
    page.goto("/dashboard/")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector('[data-testid="map"][data-status="ready"]', timeout=20_000)


def open_console(page) -> None:
    sign_in(page)
    page.get_by_role("navigation", name="Views").get_by_role("link", name="Users").click()
    page.wait_for_selector('[data-testid="users"][data-status="ready"]', timeout=20_000)


def search(page, q: str) -> None:
    page.get_by_label("Search users").fill(q)
    page.get_by_role("button", name="Search").click()


def open_ada(page) -> None:
    open_console(page)
    search(page, "username:ada")
    rows = page.get_by_test_id("user-row")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name="ada").click()
    page.wait_for_selector('[data-testid="user-page"][data-status="ready"]', timeout=20_000)


def status_of(page):
    return page.get_by_test_id("user-status")


def test_the_console_pages_through_every_user(page):
    open_console(page)
    rows = page.get_by_test_id("user-row")
    expect(rows).to_have_count(25)
    first_page = rows.first.inner_text()
    shot(page, "20-console-users")
    page.get_by_role("button", name="Next page").click()
    expect(page.get_by_text("Page 2", exact=True)).to_be_visible()
    # 40 demo users, the admin and ada: 17 on the second page, and no next one.
    expect(rows).to_have_count(17)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(rows).to_have_count(25)
    assert rows.first.inner_text() == first_page


def test_a_search_finds_a_user_and_a_bad_one_is_said_once(page):
    open_console(page)
    search(page, "email:ada@example.com OR given_name:Ada")
    rows = page.get_by_test_id("user-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ada Lovelace")
    assert "q=" in page.url  # the search is in the address: reload and back keep it

    search(page, "username:(ada")
    alert = page.get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text("position")
    expect(page.get_by_label("Search users")).to_have_attribute("aria-invalid", "true")


def test_a_users_page_shows_their_logins_on_a_map(page):
    open_ada(page)
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    expect(status_of(page)).to_have_text("Active")
    expect(page.get_by_test_id("login-map")).to_have_attribute("data-markers", "2")
    expect(page.locator("path.login-marker-impossible")).to_have_count(1)
    logins = page.get_by_test_id("user-logins").locator("li")
    expect(logins).to_have_count(2)
    expect(logins.first).to_contain_text("Tokyo, Japan")
    expect(logins.first).to_contain_text("Impossible travel")
    expect(logins.nth(1)).to_contain_text("Paris, Île-de-France, France")
    expect(page.get_by_test_id("user-roles")).to_contain_text("user")
    page.wait_for_timeout(300)  # the map's fit, for a readable screenshot
    shot(page, "21-console-user-page")


def test_block_asks_first_then_unblock(page, server):
    open_ada(page)
    block = page.get_by_role("button", name="Block")
    block.focus()
    page.keyboard.press("Enter")  # the keyboard reaches every action
    question = page.get_by_role("group", name="Confirm: block ada")
    expect(question.get_by_role("button", name="Yes, block")).to_be_focused()
    question.get_by_role("button", name="Cancel").click()
    expect(status_of(page)).to_have_text("Active")

    page.get_by_role("button", name="Block").click()
    shot(page, "22-console-confirm-block")
    page.keyboard.press("Enter")
    expect(status_of(page)).to_have_text("Blocked")
    refused = httpx.post(
        f"{server.base}/api/v1/auth/signin", json={"username": "ada", "password": ADA_PASSWORD}
    )
    assert refused.status_code == 403

    page.get_by_role("button", name="Unblock").click()
    expect(status_of(page)).to_have_text("Active")
    expect(page.get_by_role("alert")).to_have_count(0)
    assert httpx.get(f"{server.base}/api/v1/users/me", headers=ada_signs_in(server)).is_success


def test_log_out_everywhere_ends_the_users_sessions(page, server):
    ada = ada_signs_in(server)
    open_ada(page)
    expect(page.get_by_test_id("user-sessions").locator("tbody tr")).not_to_have_count(0)
    page.get_by_role("button", name="Log out everywhere").click()
    page.get_by_role("button", name="Yes, log out everywhere").click()
    expect(page.get_by_test_id("user-done")).to_contain_text("Logged out everywhere")
    expect(page.get_by_test_id("no-sessions")).to_be_visible()
    ended = httpx.get(f"{server.base}/api/v1/users/me", headers=ada)
    assert ended.status_code == 401


def test_delete_then_restore(page, server):
    open_ada(page)
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(status_of(page)).to_have_text("Deleted")
    expect(page.get_by_role("button", name="Restore")).to_be_visible()
    expect(page.get_by_role("button", name="Block")).to_have_count(0)
    gone = httpx.post(
        f"{server.base}/api/v1/auth/signin", json={"username": "ada", "password": ADA_PASSWORD}
    )
    assert gone.status_code in (401, 403)

    page.get_by_role("button", name="Restore").click()
    expect(status_of(page)).to_have_text("Active")
    assert httpx.get(f"{server.base}/api/v1/users/me", headers=ada_signs_in(server)).is_success


def test_an_action_refused_by_the_server_is_one_alert(page, server):
    """An action the server refuses (the account was erased since the page opened) is said
    once, in one alert."""
    temp = httpx.post(
        f"{server.base}/api/v1/auth/signup",
        json={"username": "shortlived", "password": ADA_PASSWORD},
    ).raise_for_status()
    sign_in(page)
    page.goto(f"/dashboard/#/users/{temp.json()['user_id']}")
    page.wait_for_selector('[data-testid="user-page"][data-status="ready"]', timeout=20_000)
    erased = httpx.post(
        f"{server.base}/api/v1/users/{temp.json()['user_id']}/erase", headers=server.admin
    )
    assert erased.status_code == 204
    page.get_by_role("button", name="Block").click()
    page.get_by_role("button", name="Yes, block").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(alert).to_have_text("no such user")


def test_users_who_are_not_admins_see_no_console(page):
    page.goto("/dashboard/")
    page.get_by_label("Username or email").fill("ada")
    page.get_by_label("Password").fill(ADA_PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/users/me")) as roles:
        page.get_by_role("button", name="Sign in").click()
    assert roles.value.json()["roles"] == ["user"]
    expect(page.get_by_text("sign in as an administrator")).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Views").get_by_role("link", name="Users")
    ).to_have_count(0)
    page.goto("/dashboard/#/users")
    # The address asks for the console; the map stays.
    expect(page.get_by_role("heading", name="Where sign-ins come from")).to_be_visible()
    expect(page.get_by_test_id("users")).to_have_count(0)
