"""Email verification against a real SMTP server: the signed-in user asks for a link, the
test reads the message, follows the link (extracts the token, POSTs it) and the address is
verified. Neighbours: replays, expiry, another user's token, a changed address, a token of
another purpose, the hourly limit, malformed bodies."""

from __future__ import annotations

import pytest

from tests.account.flows.conftest import (
    ME,
    RESET,
    SEND_VERIFICATION,
    VERIFY,
    Site,
)
from tests.helpers import bearer


@pytest.fixture
def site_settings():
    # Two emails per account an hour: the limit test reaches it, and no other test does.
    return {"account": {"email_requests_per_hour": 2}}


async def _send(site: Site, tokens: dict) -> str:
    """Ask for a link; the token of the message that arrives."""
    response = await site.client.post(SEND_VERIFICATION, headers=bearer(tokens))
    assert response.status_code == 202, response.text
    email = response.json()["email"]
    message = await site.one_message(email)
    [link] = site.links(message)
    assert link.page == "/verify-email"
    return link.token


async def _verify(site: Site, token: str):
    return await site.client.post(VERIFY, json={"token": token})


async def test_the_emailed_link_verifies_the_address(site: Site):
    ann = await site.user("ann", "ann@example.com")
    assert (await site.me(ann)).json()["email_verified"] is False

    response = await site.client.post(SEND_VERIFICATION, headers=bearer(ann))
    assert response.status_code == 202, response.text
    assert response.json()["email"] == "ann@example.com"
    message = await site.one_message("ann@example.com")
    assert "verify" in message["Subject"].lower()
    assert "ann@example.com" in site.smtp.text_of(message)
    [link] = site.links(message)
    assert link.token.startswith("ggv_")
    assert link.url in site.smtp.html_of(message)

    done = await _verify(site, link.token)
    assert done.status_code == 200, done.text
    assert done.json() == {"user_id": ann["user_id"], "email_verified": True}
    assert (await site.me(ann)).json()["email_verified"] is True
    [event] = await site.events("user.email_verified")
    assert event.actor == f"user:{ann['user_id']}"
    assert str(event.user_id) == ann["user_id"]

    replay = await _verify(site, link.token)
    assert replay.status_code == 400 and replay.json()["code"] == "invalid_token"
    again = await site.client.post(SEND_VERIFICATION, headers=bearer(ann))
    assert again.status_code == 409 and again.json()["code"] == "email_already_verified"
    assert await site.deliver() == []


async def test_no_address_to_verify_is_a_clear_409(site: Site):
    nomail = await site.user("nomail", None)
    response = await site.client.post(SEND_VERIFICATION, headers=bearer(nomail))
    assert response.status_code == 409 and response.json()["code"] == "no_email"
    anonymous = await site.client.post(SEND_VERIFICATION)
    assert anonymous.status_code == 401
    assert await site.deliver() == []


async def test_an_expired_link_is_refused(site: Site):
    ann = await site.user("ann", "ann@example.com")
    token = await _send(site, ann)
    await site.expire(token)
    response = await _verify(site, token)
    assert response.status_code == 400 and response.json()["code"] == "invalid_token"
    assert (await site.me(ann)).json()["email_verified"] is False


async def test_a_token_verifies_only_the_account_it_was_mailed_for(site: Site):
    ann = await site.user("ann", "ann@example.com")
    bob = await site.user("bob", "bob@example.com")
    ann_token = await _send(site, ann)
    bob_token = await _send(site, bob)

    done = await _verify(site, ann_token)
    assert done.json()["user_id"] == ann["user_id"]
    assert (await site.me(bob)).json()["email_verified"] is False
    assert (await _verify(site, bob_token)).json()["user_id"] == bob["user_id"]
    assert (await site.me(bob)).json()["email_verified"] is True


async def test_a_link_to_an_address_the_account_no_longer_has_is_refused(site: Site):
    ann = await site.user("ann", "ann@example.com")
    token = await _send(site, ann)
    moved = await site.client.patch(
        ME, json={"email": "ann@elsewhere.example"}, headers=bearer(ann)
    )
    assert moved.status_code == 200, moved.text

    response = await _verify(site, token)
    assert response.status_code == 400 and response.json()["code"] == "invalid_token"
    assert (await site.me(ann)).json()["email_verified"] is False
    # The new address gets its own link, which works.
    assert (await _verify(site, await _send(site, ann))).status_code == 200


async def test_changing_the_address_unverifies_it_and_setting_the_same_one_does_not(site: Site):
    ann = await site.user("ann", "ann@example.com")
    assert (await _verify(site, await _send(site, ann))).status_code == 200

    same = await site.client.patch(ME, json={"email": "ANN@example.com"}, headers=bearer(ann))
    assert same.status_code == 200 and same.json()["email_verified"] is True
    moved = await site.client.patch(ME, json={"email": "ann@new.example"}, headers=bearer(ann))
    assert moved.status_code == 200 and moved.json()["email_verified"] is False


async def test_removing_the_address_leaves_nothing_verified(site: Site):
    ann = await site.user("ann", "ann@example.com", verified=True)
    removed = await site.client.patch(ME, json={"email": None}, headers=bearer(ann))
    assert removed.status_code == 200, removed.text
    assert removed.json()["email"] is None and removed.json()["email_verified"] is False


async def test_a_reset_token_is_not_a_verification_token(site: Site):
    ann = await site.user("ann", "ann@example.com")
    assert (
        await site.client.post("/api/v1/auth/password/forgot", json={"username": "ann"})
    ).status_code == 202
    [link] = site.links(await site.one_message("ann@example.com"))
    assert link.page == "/reset-password"

    wrong = await _verify(site, link.token)
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_token"
    assert (await site.me(ann)).json()["email_verified"] is False
    # Refused for the wrong purpose, it is not used up for its own.
    reset = await site.client.post(
        RESET, json={"token": link.token, "password": "an-entirely-new-phrase-41"}
    )
    assert reset.status_code == 204, reset.text


async def test_verification_emails_are_limited_per_account_per_hour(site: Site):
    ann = await site.user("ann", "ann@example.com")
    for _ in range(2):
        assert (await site.client.post(SEND_VERIFICATION, headers=bearer(ann))).status_code == 202
    third = await site.client.post(SEND_VERIFICATION, headers=bearer(ann))
    assert third.status_code == 429 and int(third.headers["Retry-After"]) >= 1
    assert len(await site.deliver()) == 2
    # Another account has its own allowance.
    bob = await site.user("bob", "bob@example.com")
    assert (await site.client.post(SEND_VERIFICATION, headers=bearer(bob))).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": ""},
        {"token": 5},
        {"token": None},
        {"token": ["ggv_x"]},
        {"token": "x" * 129},
        {"token": "ggv_x", "extra": 1},
        "ggv_x",
        [],
    ],
)
async def test_malformed_verification_bodies_are_4xx(site: Site, body):
    response = await site.client.post(VERIFY, json=body)
    assert 400 <= response.status_code < 500, response.text


async def test_unknown_and_garbage_tokens_are_invalid_token(site: Site):
    for token in ("ggv_nope", "not a token at all", "ggv_" + "A" * 43, "\u00e9\u00e9"):
        response = await _verify(site, token)
        assert response.status_code == 400 and response.json()["code"] == "invalid_token", token
    raw = await site.client.post(
        VERIFY, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert 400 <= raw.status_code < 500
