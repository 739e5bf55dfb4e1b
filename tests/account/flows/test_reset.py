"""Password reset by email against a real SMTP server: forgot → the message → its link →
a new password. Afterwards every old session, refresh token and access token is dead, the
old password no longer signs in and the new one does. Neighbours: unknown accounts (same
answer, no message), replays, a newer link replacing an older one, expiry, a weak password,
a changed address, a blocked account, the hourly limits, malformed bodies."""

from __future__ import annotations

import uuid

import pytest

from tests.account.flows.conftest import (
    FORGOT,
    NEW_PASSWORD,
    REFRESH,
    RESET,
    SIGNIN,
    Site,
)
from tests.helpers import STRONG, bearer, signin

ACCEPTED = {
    "message": "if an account matches, a link to reset its password has been sent to its "
    "email address"
}


@pytest.fixture
def site_settings():
    # Two emails per address and per account an hour, eight requests per caller address.
    return {"account": {"email_requests_per_hour": 2}}


async def _forgot(site: Site, **body: str):
    response = await site.client.post(FORGOT, json=body)
    assert response.status_code == 202, response.text
    assert response.json() == ACCEPTED
    return response


async def _reset_token(site: Site, to: str) -> str:
    [link] = site.links(await site.one_message(to))
    assert link.page == "/reset-password"
    assert link.token.startswith("ggr_")
    return link.token


async def _reset(site: Site, token: str, password: str = NEW_PASSWORD):
    return await site.client.post(RESET, json={"token": token, "password": password})


async def test_reset_by_email_ends_every_old_credential(site: Site):
    ann = await site.user("ann", "ann@example.com")
    elsewhere = await signin(site.client, "ann")
    await _forgot(site, email="Ann@Example.com")
    message_token = await _reset_token(site, "ann@example.com")

    done = await _reset(site, message_token)
    assert done.status_code == 204, done.text

    for tokens in (ann, elsewhere):
        assert (await site.me(tokens)).status_code == 401
        refreshed = await site.client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code in (400, 401), refreshed.text
    old = await site.client.post(SIGNIN, json={"username": "ann", "password": STRONG})
    assert old.status_code == 401
    fresh = await signin(site.client, "ann", NEW_PASSWORD)
    me = (await site.me(fresh)).json()
    # The link proved the mailbox.
    assert me["email_verified"] is True and me["password_reset_required"] is False

    [event] = await site.events("user.password_reset")
    assert event.actor == f"user:{ann['user_id']}" and event.payload["sessions_revoked"] == 2
    assert len(await site.events("user.password_reset_requested")) == 1
    assert len(await site.events("user.email_verified")) == 1
    # "Your password was changed", to the now verified address.
    notice = await site.one_message("ann@example.com")
    assert "password was changed" in notice["Subject"].lower()

    replay = await _reset(site, message_token, "yet-another-passphrase-77")
    assert replay.status_code == 400 and replay.json()["code"] == "invalid_token"
    assert (await signin(site.client, "ann", NEW_PASSWORD))["username"] == "ann"


async def test_forgot_by_username_mails_the_accounts_address(site: Site):
    await site.user("ann", "ann@example.com")
    await _forgot(site, username="ANN")
    token = await _reset_token(site, "ann@example.com")
    assert (await _reset(site, token)).status_code == 204


async def test_unknown_accounts_get_the_same_answer_and_no_message(site: Site):
    await site.user("nomail", None)
    await _forgot(site, email="nobody@example.com")
    await _forgot(site, username="nobody")
    await _forgot(site, username="nomail")  # exists, but has no address to write to
    assert await site.deliver() == []
    assert await site.events("user.password_reset_requested") == []


async def test_a_newer_link_replaces_the_older_one(site: Site):
    await site.user("ann", "ann@example.com")
    await _forgot(site, email="ann@example.com")
    older = await _reset_token(site, "ann@example.com")
    await _forgot(site, username="ann")
    newer = await _reset_token(site, "ann@example.com")

    refused = await _reset(site, older)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_token"
    assert (await _reset(site, newer)).status_code == 204


async def test_an_expired_link_is_refused(site: Site):
    await site.user("ann", "ann@example.com")
    await _forgot(site, email="ann@example.com")
    token = await _reset_token(site, "ann@example.com")
    await site.expire(token)
    response = await _reset(site, token)
    assert response.status_code == 400 and response.json()["code"] == "invalid_token"
    assert (await signin(site.client, "ann", STRONG))["username"] == "ann"


async def test_a_weak_password_is_refused_and_the_link_still_works(site: Site):
    await site.user("ann", "ann@example.com")
    await _forgot(site, email="ann@example.com")
    token = await _reset_token(site, "ann@example.com")
    for weak in ("password123", "annannann"):
        response = await _reset(site, token, weak)
        assert response.status_code == 422, response.text
    assert (await _reset(site, token)).status_code == 204


async def test_a_reset_lifts_a_required_reset(site: Site):
    ann = await site.user("ann", "ann@example.com")
    async with site.container.db.transaction() as session:
        await site.container.users.require_password_reset(
            session, uuid.UUID(ann["user_id"]), "test"
        )
    required = await site.client.post(SIGNIN, json={"username": "ann", "password": STRONG})
    assert required.status_code == 403 and required.json()["code"] == "password_reset_required"

    await _forgot(site, email="ann@example.com")
    assert (await _reset(site, await _reset_token(site, "ann@example.com"))).status_code == 204
    assert (await signin(site.client, "ann", NEW_PASSWORD))["user"][
        "password_reset_required"
    ] is False


async def test_a_link_to_an_address_the_account_no_longer_has_is_refused(site: Site):
    ann = await site.user("ann", "ann@example.com")
    await _forgot(site, email="ann@example.com")
    token = await _reset_token(site, "ann@example.com")
    moved = await site.client.patch(
        "/api/v1/users/me", json={"email": "ann@new.example"}, headers=bearer(ann)
    )
    assert moved.status_code == 200
    response = await _reset(site, token)
    assert response.status_code == 400 and response.json()["code"] == "invalid_token"


async def test_blocked_accounts_get_no_link_and_a_link_sent_before_the_block_fails(site: Site):
    ann = await site.user("ann", "ann@example.com")
    await _forgot(site, email="ann@example.com")
    token = await _reset_token(site, "ann@example.com")
    admin = bearer(site.admin)
    assert (
        await site.client.post(f"/api/v1/users/{ann['user_id']}/block", headers=admin)
    ).status_code == 200

    blocked = await _reset(site, token)
    assert blocked.status_code == 403 and blocked.json()["code"] == "account_blocked"
    await _forgot(site, email="ann@example.com")
    assert await site.deliver() == []
    # The refused link is used up: unblocked, the owner asks for a new one.
    assert (
        await site.client.post(f"/api/v1/users/{ann['user_id']}/unblock", headers=admin)
    ).status_code == 200
    again = await _reset(site, token)
    assert again.status_code == 400 and again.json()["code"] == "invalid_token"


async def test_emails_are_limited_per_address_and_per_account_silently(site: Site):
    await site.user("ann", "ann@example.com")
    for _ in range(3):
        await _forgot(site, email="ann@example.com")
    assert len(await site.deliver()) == 2  # the address's two this hour
    # Named another way, the account's own limit holds: same answer, no message.
    await _forgot(site, username="ann")
    assert await site.deliver() == []


async def test_the_caller_address_is_refused_out_loud_past_its_limit(site: Site):
    for n in range(8):
        await _forgot(site, email=f"nobody{n}@example.com")
    refused = await site.client.post(FORGOT, json={"email": "nobody@example.com"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # Another address is not held back by this one.
    other = await site.client.post(
        FORGOT, json={"email": "nobody@example.com"}, headers={"X-Forwarded-For": "11.3.3.3"}
    )
    assert other.status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "ann@example.com", "username": "ann"},
        {"email": "not-an-email"},
        {"email": None, "username": None},
        {"username": ""},
        {"username": 5},
        {"email": "ann@example.com", "extra": True},
        "ann@example.com",
    ],
)
async def test_malformed_forgot_bodies_are_4xx(site: Site, body):
    response = await site.client.post(FORGOT, json=body)
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": "ggr_x"},
        {"password": NEW_PASSWORD},
        {"token": "ggr_x", "password": "short"},
        {"token": "ggr_x", "password": "x" * 129},
        {"token": 1, "password": NEW_PASSWORD},
        {"token": "ggr_x", "password": NEW_PASSWORD, "extra": 1},
    ],
)
async def test_malformed_reset_bodies_are_4xx(site: Site, body):
    response = await site.client.post(RESET, json=body)
    assert 400 <= response.status_code < 500, response.text


async def test_an_unknown_reset_token_is_invalid_token(site: Site):
    response = await _reset(site, "ggr_" + "A" * 43)
    assert response.status_code == 400 and response.json()["code"] == "invalid_token"
