"""The pages account emails link to, in a real browser (Debian's `chromium` driven by
Playwright) against a real `globeguard serve` whose mail goes to `.eml` files under
`<data_dir>/mail/` (no mail server configured): the link is read from the file the server
wrote, as a user would click it. Every request must stay on loopback, and the page's CSP must
block nothing. Screenshots go to `test-artifacts/account/`.

Without chromium these tests skip, except with CI=true, where they fail."""

from __future__ import annotations

import email
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import httpx
import pyotp
import pytest

from globeguard.web.routes import DIST
from tests.account.mfa.support import wrong_code
from tests.e2e.harness import (
    ROOT,
    WATCH_VIOLATIONS,
    launched_browser,
    live_server,
    require,
    watched_page,
)

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

ARTIFACTS = ROOT / "test-artifacts" / "account"
ADMIN_PASSWORD = "account-pages-admin-Passw0rd!"
OLD_PASSWORD = "lantern-orchard-pebble-41"
NEW_PASSWORD = "quiet-harbour-violet-kettle-9"
# Addresses the bundled GeoLite2-City places in Paris and Tokyo.
PARIS, TOKYO = "88.160.133.1", "202.32.10.1"
LINK = re.compile(r"(https?://[^\s\"'<>]+/dashboard/)#(/[a-z-]+\?[^\s\"'<>]+)")


@dataclass(frozen=True)
class Server:
    base: str
    mail: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    require(DIST / "index.html")
    data = tmp_path_factory.mktemp("account")
    # The browser's sign-in comes "from Tokyo" through X-Forwarded-For (a proxy on loopback),
    # and a sign-in from a country the account was never in asks for a second factor.
    env = {
        "GLOBEGUARD_HTTP__TRUSTED_PROXIES": "127.0.0.1",
        "GLOBEGUARD_RISK__ON_NEW_COUNTRY": "mfa",
    }
    with live_server(data, ADMIN_PASSWORD, env) as base:
        yield Server(base, data / "mail")


@pytest.fixture(scope="module")
def browser(server) -> Iterator[object]:
    with launched_browser() as instance:
        yield instance


@pytest.fixture
def page(browser, server):
    with watched_page(browser, server.base, 1100, 760) as tab:
        yield tab


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def signup(server: Server, username: str) -> None:
    body = {"username": username, "password": OLD_PASSWORD, "email": f"{username}@example.com"}
    httpx.post(f"{server.base}/api/v1/auth/signup", json=body).raise_for_status()


def signin(server: Server, username: str, password: str) -> httpx.Response:
    body = {"username": username, "password": password}
    return httpx.post(f"{server.base}/api/v1/auth/signin", json=body)


def mailed_link(server: Server, to: str, page_name: str, timeout: float = 20) -> str:
    """The fragment (`/reset-password?token=…`) of the newest link to `page_name` mailed to
    `to`, waiting for the mail sender to write it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for path in sorted(server.mail.glob("*.eml")) if server.mail.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] != to:
                continue
            text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            found += [m.group(2) for m in LINK.finditer(text) if m.group(2).startswith(page_name)]
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no {page_name} link mailed to {to} in {timeout} s")


def test_forgot_password_then_the_mailed_link_sets_a_new_one(page, server):
    signup(server, "ann")
    page.goto("/dashboard/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email or username").fill("ann@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_test_id("account-result")).to_contain_text("If an account exists")
    shot(page, "01-forgot-password-sent")

    link = mailed_link(server, "ann@example.com", "/reset-password")
    page.goto(f"/dashboard/#{link}")
    # The token is read once and leaves the address bar (and the history entry).
    expect(page.get_by_label("New password", exact=True)).to_be_visible()
    assert page.evaluate("location.hash") == "#/reset-password"

    # A password the server refuses: its reason is shown, once, and the link still works.
    page.get_by_label("New password", exact=True).fill("password123")
    page.get_by_label("New password again").fill("password123")
    page.get_by_role("button", name="Set password").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(alert).not_to_be_empty()
    shot(page, "02-reset-password-refused")
    assert signin(server, "ann", OLD_PASSWORD).status_code == 200

    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_test_id("account-result")).to_contain_text("Your password was changed")
    shot(page, "03-reset-password-done")

    assert signin(server, "ann", OLD_PASSWORD).status_code == 401
    page.get_by_role("link", name="Sign in with the new password").click()
    page.get_by_label("Username or email").fill("ann")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=20_000)

    # The same link a second time: it is used up, and the page offers a new one.
    page.goto("/dashboard/")
    page.evaluate("sessionStorage.clear()")
    page.goto(f"/dashboard/#{link}")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD + "x")
    page.get_by_label("New password again").fill(NEW_PASSWORD + "x")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("alert")).to_contain_text("does not work any more")
    page.get_by_role("link", name="Ask for a new link").click()
    expect(page.get_by_label("Email or username")).to_be_visible()
    shot(page, "04-reset-link-used")


def test_a_verification_link_verifies_only_when_confirmed(page, server):
    signup(server, "bea")
    tokens = signin(server, "bea", OLD_PASSWORD).raise_for_status().json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    sent = httpx.post(f"{server.base}/api/v1/auth/verify-email/send", headers=auth)
    assert sent.status_code == 202, sent.text

    link = mailed_link(server, "bea@example.com", "/verify-email")
    page.goto(f"/dashboard/#{link}")
    button = page.get_by_role("button", name="Verify my email")
    expect(button).to_be_visible()
    assert page.evaluate("location.hash") == "#/verify-email"
    # Opening the link (as a mail scanner would) verified nothing.
    me = httpx.get(f"{server.base}/api/v1/users/me", headers=auth).json()
    assert me["email_verified"] is False
    shot(page, "05-verify-email-ready")

    button.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("account-result")).to_have_text("Email verified. Thank you.")
    shot(page, "06-verify-email-done")
    me = httpx.get(f"{server.base}/api/v1/users/me", headers=auth).json()
    assert me["email_verified"] is True

    # Opened again: refused, in one alert.
    page.goto("/dashboard/")
    page.goto(f"/dashboard/#{link}")
    page.get_by_role("button", name="Verify my email").click()
    expect(page.get_by_role("alert")).to_contain_text("does not work")
    expect(page.get_by_role("alert")).to_have_count(1)


def test_a_feedback_link_offers_its_answer_and_sends_nothing_until_pressed(page, server):
    token = "ggf_" + "x" * 43  # well-formed, unknown to the server
    page.goto(f"/dashboard/#/login-feedback?token={token}&answer=no")
    expect(page.get_by_test_id("feedback-answer")).to_contain_text("No, secure my account")
    assert page.evaluate("location.hash") == "#/login-feedback"
    # The link's answer has the focus; both answers are one Tab apart.
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "No, secure my account"
    shot(page, "07-login-feedback")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("does not work any more")


def test_a_mangled_link_is_not_sent(page, server):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
    page.goto("/dashboard/#/reset-password?token=ggr_cut")
    expect(page.get_by_role("alert")).to_contain_text("This link is incomplete")
    expect(page.get_by_role("link", name="Ask for a new link")).to_be_visible()
    assert requests == []


def test_a_held_back_sign_in_asks_for_a_code_and_an_admin_resets_the_factor(browser, page, server):
    """cal has an authenticator and signed in from Paris; a sign-in from Tokyo (a new country,
    seconds later) is held back for a second factor. A wrong code is refused and the sign-in
    kept; a recovery code completes it. An admin then sees MFA on and resets it."""
    signup(server, "cal")
    paris = {"X-Forwarded-For": PARIS}
    tokens = httpx.post(
        f"{server.base}/api/v1/auth/signin",
        headers=paris,
        json={"username": "cal", "password": OLD_PASSWORD},
    ).raise_for_status()
    auth = {**paris, "Authorization": f"Bearer {tokens.json()['access_token']}"}
    secret = httpx.post(f"{server.base}/api/v1/mfa/totp", headers=auth).raise_for_status()
    confirmed = httpx.post(
        f"{server.base}/api/v1/mfa/totp/confirm",
        headers=auth,
        json={"code": pyotp.TOTP(secret.json()["secret"]).now()},
    ).raise_for_status()
    recovery = confirmed.json()["recovery_codes"][0]

    tokyo = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1100, "height": 760},
        base_url=server.base,
        extra_http_headers={"X-Forwarded-For": TOKYO},
    )
    try:
        cal = tokyo.new_page()
        cal.add_init_script(WATCH_VIOLATIONS)
        cal.goto("/dashboard/")
        cal.get_by_label("Username or email").fill("cal")
        cal.get_by_label("Password").fill(OLD_PASSWORD)
        cal.get_by_role("button", name="Sign in").click()
        expect(cal.get_by_test_id("mfa-prompt")).to_contain_text("authenticator app")
        cal.get_by_label("Code").fill(wrong_code(secret.json()["secret"], datetime.now(UTC)))
        cal.get_by_role("button", name="Verify").click()
        expect(cal.get_by_role("alert")).to_have_count(1)
        expect(cal.get_by_label("Code")).to_be_visible()  # the sign-in is kept for another try
        shot(cal, "08-mfa-wrong-code")
        cal.get_by_label("Code").fill(recovery.upper())
        cal.get_by_role("button", name="Verify").click()
        expect(cal.get_by_role("button", name="Sign out")).to_be_visible(timeout=20_000)
        assert cal.evaluate("window.__violations") == []
    finally:
        tokyo.close()

    cal_id = httpx.get(f"{server.base}/api/v1/users/me", headers=auth).json()["id"]
    page.goto("/dashboard/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=20_000)
    page.goto(f"/dashboard/#/users/{cal_id}")
    expect(page.get_by_test_id("user-mfa")).to_have_attribute("data-mfa", "on")
    page.get_by_role("button", name="Reset MFA").click()
    confirm = page.get_by_role("group", name="Confirm: reset MFA cal")
    expect(confirm.get_by_role("button", name="Yes, reset MFA")).to_be_focused()
    shot(page, "09-admin-reset-mfa-confirm")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("user-done")).to_contain_text("MFA reset")
    expect(page.get_by_test_id("user-mfa")).to_have_attribute("data-mfa", "off")
    expect(page.get_by_role("button", name="Reset MFA")).to_have_count(0)
    shot(page, "10-admin-mfa-off")
    status = httpx.get(f"{server.base}/api/v1/mfa", headers=auth)
    assert status.json()["totp"]["enrolled"] is False
