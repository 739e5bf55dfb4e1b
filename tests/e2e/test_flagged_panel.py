"""Flagged journeys in the dashboard, in a real browser (Debian's `chromium` driven by
Playwright) against a real server on a temporary SQLite database and the bundled GeoLite2
database. Logins are reported through `POST /api/v1/login-events` with an API key: Paris,
then Tokyo an hour later, is impossible. Screenshots go to `test-artifacts/dashboard/`.

Without chromium these tests skip, except with CI=true, where they fail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from globeguard.web.routes import DIST
from tests.e2e.harness import WATCH_VIOLATIONS, launched_browser, live_server, require
from tests.e2e.test_dashboard import shot

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

PASSWORD = "flagged-admin-Passw0rd!"
# Addresses the bundled GeoLite2-City places in Paris (Île-de-France, FR) and Tokyo (Tokyo,
# JP), 5 km radii.
PARIS, TOKYO = "88.160.133.1", "202.32.10.1"
JOURNEY = "Paris, Île-de-France, France → Tokyo, Japan"


@dataclass(frozen=True)
class Server:
    base: str
    admin: dict[str, str]
    ingest: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    require(DIST / "index.html")
    # Judged from the first journey on: no learning (by count or by days), so a new
    # subject's second place is graded in full.
    env = {"GLOBEGUARD_TRAVEL__LEARNING_LOGINS": "0", "GLOBEGUARD_TRAVEL__LEARNING_PERIOD": "P0D"}
    with live_server(tmp_path_factory.mktemp("flagged"), PASSWORD, env) as base:
        yield _signed_in(base)


def _signed_in(base: str) -> Server:
    body = {"username": "admin", "password": PASSWORD}
    tokens = httpx.post(f"{base}/api/v1/auth/signin", json=body).raise_for_status().json()
    admin = {"Authorization": f"Bearer {tokens['access_token']}"}
    key = httpx.post(
        f"{base}/api/v1/api-keys",
        headers=admin,
        json={"name": "idp", "scopes": ["login_events:write"]},
    ).raise_for_status()
    return Server(base, admin, {"X-API-KEY": key.json()["api_key"]})


def travel(server: Server, subject: str, hours_ago: float) -> str:
    """Paris, then Tokyo an hour later; returns the Tokyo login's verdict."""
    start = datetime.now(UTC) - timedelta(hours=hours_ago)
    verdicts = []
    for n, (ip, at) in enumerate(((PARIS, start), (TOKYO, start + timedelta(hours=1)))):
        body = {"subject": subject, "ip": ip, "occurred_at": at.isoformat(), "success": True}
        body["event_uuid"] = f"{subject}-{n}"
        response = httpx.post(
            f"{server.base}/api/v1/login-events", headers=server.ingest, json=body
        )
        assert response.status_code == 201, response.text
        verdicts.append(response.json()["verdict"])
    return str(verdicts[-1])


@pytest.fixture(scope="module")
def journeys(server) -> dict[str, str]:
    """Three travellers, newest last: subject → their Tokyo login's verdict."""
    subjects = {"ines@idp": 6.0, "marc@idp": 4.0, "traveller@idp": 2.0}
    return {subject: travel(server, subject, hours) for subject, hours in subjects.items()}


@pytest.fixture
def page(browser, server, journeys):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server.base)
    page = context.new_page()
    page.add_init_script(WATCH_VIOLATIONS)
    yield page
    assert page.evaluate("window.__violations") == []  # nothing the CSP had to block
    context.close()


@pytest.fixture(scope="module")
def browser(server) -> Iterator[object]:
    with launched_browser() as instance:
        yield instance


def sign_in(page) -> None:
    page.goto("/dashboard/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector('[data-testid="map"][data-status="ready"]', timeout=20_000)
    page.wait_for_selector('[data-testid="flagged"][data-status="ready"]', timeout=20_000)


def row_of(page, subject: str):
    return page.get_by_test_id("flagged-row").filter(has_text=subject)


# The middle of an arc, in page pixels: an arc is a thin curve, and the centre of its box is
# seldom on it.
ARC_MIDDLE = """(path) => {
    const point = path.getPointAtLength(path.getTotalLength() / 2);
    const m = path.getScreenCTM();
    return [point.x * m.a + point.y * m.c + m.e, point.x * m.b + point.y * m.d + m.f];
}"""


def test_seeded_journeys_are_impossible(journeys):
    assert set(journeys.values()) == {"impossible"}


def test_an_arc_popup_names_both_places(page):
    sign_in(page)
    arcs = page.locator("path.arc-impossible")
    expect(arcs).to_have_count(3)
    x, y = arcs.first.evaluate(ARC_MIDDLE)
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    expect(popup).to_contain_text("Impossible journey")
    expect(popup).to_contain_text(JOURNEY)
    expect(popup).to_contain_text("mph")
    expect(popup).to_contain_text("km/h")
    expect(popup).to_contain_text("in 60 min")
    page.wait_for_timeout(300)  # the popup's fade-in, for a readable screenshot
    shot(page, "10-arc-popup")


def test_show_on_map_opens_the_journey_of_a_listed_login(page):
    sign_in(page)
    row_of(page, "marc@idp").get_by_role("button", name="Show on map").click()
    popup = page.locator(".leaflet-popup-content")
    expect(popup).to_contain_text(JOURNEY)
    expect(popup).to_contain_text("marc@idp")


def test_the_panel_lists_flagged_logins_newest_first(page):
    sign_in(page)
    rows = page.get_by_test_id("flagged-row")
    expect(rows).to_have_count(3)
    texts = [rows.nth(i).inner_text() for i in range(3)]
    assert ["traveller@idp" in texts[0], "marc@idp" in texts[1], "ines@idp" in texts[2]] == [
        True
    ] * 3
    first = rows.first
    for part in (JOURNEY, "Impossible", "mph", "km/h", "via api", "UTC"):
        expect(first).to_contain_text(part)
    shot(page, "11-flagged-panel")


def test_safe_from_the_keyboard_marks_the_row(page):
    sign_in(page)
    row = row_of(page, "traveller@idp")
    safe = row.get_by_role("button", name="Safe")
    safe.focus()
    with page.expect_response(lambda r: r.url.endswith("/review")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200, answer.value.text()
    expect(row).to_have_attribute("data-review", "safe")
    expect(row.get_by_test_id("flagged-review")).to_contain_text("Reviewed: safe")
    expect(row.get_by_test_id("flagged-review")).to_be_focused()  # not lost with the button
    expect(row.get_by_role("button", name="Safe")).to_have_count(0)
    expect(page.get_by_role("alert")).to_have_count(0)
    shot(page, "12-reviewed-safe")
    # What the list says after a reload is what the server stored.
    page.reload()
    page.wait_for_selector('[data-testid="flagged"][data-status="ready"]', timeout=20_000)
    expect(row_of(page, "traveller@idp")).to_have_attribute("data-review", "safe")


def test_compromised_asks_first(page):
    sign_in(page)
    row = row_of(page, "ines@idp")
    row.get_by_role("button", name="Compromised").click()
    question = row.get_by_role("group", name="Confirm ines@idp was compromised")
    expect(question).to_be_visible()
    expect(question.get_by_role("button", name="Yes, compromised")).to_be_focused()
    question.get_by_role("button", name="Cancel").click()
    expect(row).to_have_attribute("data-review", "none")
    expect(row.get_by_role("button", name="Compromised")).to_be_focused()

    row.get_by_role("button", name="Compromised").click()
    shot(page, "13-compromised-confirm")
    row.get_by_role("button", name="Yes, compromised").click()
    expect(row).to_have_attribute("data-review", "compromised")
    expect(row.get_by_test_id("flagged-review")).to_contain_text("Reviewed: compromised")
    expect(row.get_by_role("button", name="Safe")).to_have_count(0)
    expect(row.get_by_role("button", name="Compromised")).to_have_count(0)


def test_a_refused_review_is_said_once(page, server):
    sign_in(page)
    row = row_of(page, "marc@idp")
    # Another admin finds the login compromised while this page still offers "Safe".
    listed = httpx.get(f"{server.base}/api/v1/logins/flagged", headers=server.admin).json()
    (login,) = [i for i in listed["items"] if i["subject"] == "marc@idp"]
    review = f"{server.base}/api/v1/logins/{login['id']}/review"
    done = httpx.post(review, headers=server.admin, json={"verdict": "compromised"})
    assert done.status_code == 200, done.text

    row.get_by_role("button", name="Safe").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text("marc@idp: ")
    expect(alert).to_contain_text("compromised")
    expect(row).to_have_attribute("data-review", "none")
    shot(page, "14-review-refused")
