"""The dashboard in a real browser: Debian's `chromium` driven by Playwright (no downloaded
browser), against a real server on a temporary SQLite database filled by `globeguard demo
seed`. No tiles, no network beyond the server. Screenshots of each state go to
`test-artifacts/dashboard/`.

Without chromium these tests skip, except with CI=true, where they fail."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from globeguard.web.routes import DIST
from tests.e2e.harness import ROOT, WATCH_VIOLATIONS, launched_browser, live_server, require

playwright = pytest.importorskip("playwright.sync_api")

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
PASSWORD = "dashboard-admin-Passw0rd!"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    require(DIST / "index.html")
    seed = ["demo", "seed", "--users", "600", "--seed", "11"]
    with live_server(tmp_path_factory.mktemp("dashboard"), PASSWORD, setup=[seed]) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server) -> Iterator[object]:
    with launched_browser() as instance:
        yield instance


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server)
    page = context.new_page()
    page.add_init_script(WATCH_VIOLATIONS)
    yield page
    assert page.evaluate("window.__violations") == []  # nothing the CSP had to block
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def sign_in(page) -> None:
    page.goto("/dashboard/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    settled(page)


def settled(page) -> None:
    """The map and the top-10 have answered."""
    page.wait_for_selector('[data-testid="map"][data-status="ready"]', timeout=20_000)
    page.wait_for_selector('[data-testid="top"][data-status="ready"]', timeout=20_000)


def drawn_pixels(page) -> int:
    return int(
        page.evaluate(
            """() => {
                const canvas = document.querySelector('canvas.leaflet-heatmap-layer');
                if (!canvas) return -1;
                const context = canvas.getContext('2d');
                const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
                let n = 0;
                for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
                return n;
            }"""
        )
    )


def top_counts(page) -> list[int]:
    rows = page.get_by_test_id("top-row")
    return [int(rows.nth(i).get_attribute("data-count") or 0) for i in range(rows.count())]


def test_sign_in_refuses_a_wrong_password_then_shows_the_map(page):
    page.goto("/dashboard/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill("wrong-password-123")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").wait_for()
    shot(page, "01-signin-refused")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    settled(page)
    shot(page, "02-signed-in")


def test_the_heatmap_canvas_has_drawn_pixels(page):
    sign_in(page)
    page.wait_for_selector("canvas.leaflet-heatmap-layer", state="attached")
    assert drawn_pixels(page) > 500


def test_the_heat_is_painted_over_the_land_not_under_it(page):
    """Opaque country fills stacked above the heat canvas hid every cell over land (only the
    blur reaching into the sea showed)."""
    sign_in(page)
    page.wait_for_selector("canvas.leaflet-heatmap-layer", state="attached")
    heat_above_land = page.evaluate(
        """() => {
            const z = (el) => Number(getComputedStyle(el.closest('.leaflet-pane')).zIndex);
            const heat = document.querySelector('canvas.leaflet-heatmap-layer');
            const land = document.querySelector('.leaflet-countries-pane path');
            return land !== null && z(heat) > z(land);
        }"""
    )
    assert heat_above_land


def test_the_top_ten_lists_ten_places_in_descending_order(page):
    sign_in(page)
    counts = top_counts(page)
    assert len(counts) == 10
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1] > 0
    shot(page, "03-top-ten")


def heat_total(page) -> int:
    return int(page.get_by_test_id("map").get_attribute("data-total") or 0)


def test_a_metadata_filter_changes_the_cells_and_the_top_ten(page):
    sign_in(page)
    before_total, before_top = heat_total(page), top_counts(page)
    with page.expect_response(lambda r: "/analytics/heatmap" in r.url and "q=" in r.url) as info:
        page.get_by_label("Users matching").fill("user_metadata.subscription_tier:premium")
        page.get_by_role("button", name="Apply").click()
    settled(page)
    filtered = info.value.json()
    # About a third of the users are premium: fewer sign-ins in the cells and in the top 10.
    assert 0 < filtered["total_weight"] < before_total * 0.6
    assert heat_total(page) == filtered["total_weight"]
    after_top = top_counts(page)
    assert after_top != before_top and 0 < sum(after_top) < sum(before_top)
    assert drawn_pixels(page) > 0
    shot(page, "04-filtered-premium")


def test_zooming_in_fetches_a_finer_grid(page):
    sign_in(page)
    coarse = float(page.get_by_test_id("map").get_attribute("data-cell-deg") or 0)
    with page.expect_response(lambda r: "/analytics/heatmap" in r.url and "zoom=5" in r.url):
        page.get_by_test_id("map").focus()
        for _ in range(3):
            page.locator(".leaflet-control-zoom-in").click()
            page.wait_for_timeout(300)
    settled(page)
    fine = float(page.get_by_test_id("map").get_attribute("data-cell-deg") or 0)
    assert 0 < fine < coarse
    shot(page, "05-zoomed-in")


def test_a_bad_query_is_shown_inline(page):
    sign_in(page)
    page.get_by_label("Users matching").fill("user_metadata.subscription_tier:(premium")
    page.get_by_role("button", name="Apply").click()
    error = page.get_by_test_id("query-error")
    error.wait_for()
    assert "position" in error.inner_text()
    assert page.get_by_label("Users matching").get_attribute("aria-invalid") == "true"
    # Said once: not again by the map's badge nor by the top-10, which the same query failed.
    playwright.expect(page.get_by_test_id("top")).to_have_attribute("data-status", "error")
    playwright.expect(page.get_by_test_id("map")).to_have_attribute("data-status", "error")
    playwright.expect(page.get_by_role("alert")).to_have_count(1)
    assert page.locator("body").inner_text().count(error.inner_text()) == 1
    shot(page, "06-bad-query")


def test_the_map_answers_the_keyboard(page):
    sign_in(page)
    page.get_by_test_id("map").focus()
    with page.expect_response(lambda r: "/analytics/heatmap" in r.url and "zoom=3" in r.url):
        page.keyboard.press("+")
    settled(page)
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    # A locator assertion, not wait_for_function: the page's CSP forbids evaluating strings.
    playwright.expect(popup).not_to_contain_text("Loading")
    assert popup.inner_text().strip()
    shot(page, "07-keyboard-popup")


def test_the_legend_says_what_the_colours_count(page):
    sign_in(page)
    legend = page.get_by_test_id("legend")
    expect = playwright.expect
    expect(legend).to_contain_text("Sign-ins per spot")
    ticks = legend.get_by_role("list", name="Colour scale, cold to hot").get_by_role("listitem")
    values = [int(t.replace(",", "")) for t in ticks.all_inner_texts()]
    # From one sign-in to the busiest cell in view, increasing.
    busiest = int(page.get_by_test_id("map").get_attribute("data-max") or 0)
    assert values[0] == 1 and values[-1] == busiest > 1
    assert values == sorted(set(values))
    arcs = legend.get_by_role("list", name="Travel arcs")
    expect(arcs).to_contain_text("Suspicious travel")
    expect(arcs).to_contain_text("Impossible travel")
    shot(page, "08-map-legend")

    page.locator('select[name="by"]').select_option("users")
    page.get_by_label("Suspicious travel").uncheck()
    page.get_by_role("button", name="Apply").click()
    settled(page)
    expect(legend).to_contain_text("Distinct users per spot")
    expect(legend.get_by_role("list", name="Travel arcs")).to_have_count(0)


def test_places_are_named_not_coded(page):
    sign_in(page)
    names = page.get_by_test_id("top-row").all_inner_texts()
    # Cities end in a country's name ("…, Japan"), never in its code ("…, JP").
    assert names and not any(re.search(r", [A-Z]{2}\b", n) for n in names), names
    with page.expect_response(lambda r: "level=country" in r.url):
        page.get_by_label("Level").select_option("country")
    playwright.expect(page.get_by_test_id("top")).to_have_attribute("data-status", "ready")
    countries = [n.split("\n")[1] for n in page.get_by_test_id("top-row").all_inner_texts()]
    assert len(countries) == 10 and all(len(c) > 2 for c in countries), countries
    assert "United States" in countries


def test_a_click_anywhere_on_a_top_row_shows_the_place(page):
    sign_in(page)
    first = page.get_by_test_id("top-row").first
    name = first.locator(".top-name").inner_text()
    first.locator(".num").last.click()  # the share, not the name
    popups = page.locator(".leaflet-popup-content")
    playwright.expect(popups.filter(has_text=name)).to_be_visible()
    # The keyboard: the row is one button.
    second = page.get_by_test_id("top-row").nth(1)
    second.get_by_role("button").focus()
    page.keyboard.press("Enter")
    playwright.expect(
        popups.filter(has_text=second.locator(".top-name").inner_text())
    ).to_be_visible()


def test_the_page_has_its_own_favicon(page, server):
    sign_in(page)
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href == "/dashboard/favicon.svg"
    icon = page.request.get(href)
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in icon.body()
