"""The "was this you?" email and its two answers, against a real SMTP server. A user signs
in from New York and then from London (a flagged login); the notice about a login is queued
by `container.notices.signin_notice` (what the step-up policy calls under `notify`); the
test reads the place, time and device in the message and follows one of its links."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from globeguard.travel.models import LoginEvent
from tests.account.flows.conftest import (
    BROWSER,
    FEEDBACK,
    LONDON,
    NEW_PASSWORD,
    NY,
    RESET,
    SIGNIN,
    Link,
    Site,
)
from tests.helpers import STRONG, bearer, signin


async def _login(site: Site, username: str, ip: str) -> tuple[dict[str, Any], LoginEvent]:
    response = await site.signin_from(username, ip)
    assert response.status_code == 200, response.text
    tokens = response.json()
    async with site.container.db.read() as session:
        query = (
            select(LoginEvent)
            .where(LoginEvent.user_id == uuid.UUID(tokens["user_id"]), LoginEvent.success)
            .order_by(LoginEvent.id.desc())
        )
        event = (await session.scalars(query)).first()
    assert event is not None
    return tokens, event


async def _notify(site: Site, user_id: str, event: LoginEvent) -> bool:
    async with site.container.db.transaction() as session:
        login = await session.get(LoginEvent, event.id)
        assert login is not None
        return await site.container.notices.signin_notice(session, uuid.UUID(user_id), login)


async def _noticed(site: Site, username: str, email: str) -> tuple[dict, LoginEvent, dict]:
    """A verified user signed in from New York, then London (impossible); the notice about
    London: tokens, the login, and the links by answer."""
    await site.user(username, email, verified=True)
    await _login(site, username, NY)
    tokens, london = await _login(site, username, LONDON)
    assert london.verdict == "impossible"
    assert await _notify(site, tokens["user_id"], london) is True
    message = await site.one_message(email)
    links = {link.query["answer"]: link for link in site.links(message)}
    assert set(links) == {"yes", "no"}
    return tokens, london, links


async def _answer(site: Site, link: Link):
    assert link.page == "/login-feedback"
    return await site.client.post(
        FEEDBACK, json={"token": link.token, "answer": link.query["answer"]}
    )


async def _stored(site: Site, login_id: int) -> LoginEvent:
    async with site.container.db.read() as session:
        found = await session.get(LoginEvent, login_id)
        assert found is not None
        return found


async def test_the_notice_names_the_place_the_time_and_the_device(site: Site):
    await site.user("ann", "ann@example.com", verified=True)
    tokens, login = await _login(site, "ann", LONDON)
    assert await _notify(site, tokens["user_id"], login) is True
    message = await site.one_message("ann@example.com")
    text = site.smtp.text_of(message)
    assert "London, England, United Kingdom" in text
    assert login.occurred_at.strftime("%Y-%m-%dT%H:%M:%S") + "Z" in text
    assert BROWSER in text and LONDON in text
    links = site.links(message)
    assert [link.query["answer"] for link in links] == ["yes", "no"]
    # One token, two answers.
    assert links[0].token == links[1].token and links[0].token.startswith("ggf_")
    html = site.smtp.html_of(message)
    assert "London, England, United Kingdom" in html and BROWSER in html


async def test_yes_trusts_the_place_and_clears_the_flag(site: Site):
    tokens, london, links = await _noticed(site, "ann", "ann@example.com")
    response = await _answer(site, links["yes"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "answer": "yes",
        "login_id": london.id,
        "review": "safe",
        "sessions_revoked": None,
        "password_reset_sent": False,
    }
    assert (await _stored(site, london.id)).review == "safe"
    actor = f"user:{tokens['user_id']}"
    [confirmed] = await site.events("login.confirmed")
    assert confirmed.actor == actor and confirmed.payload["login_id"] == london.id
    [cleared] = await site.events("login.cleared")
    assert cleared.actor == actor and cleared.payload["login_id"] == london.id
    [reviewed] = await site.events("login.reviewed")
    assert reviewed.actor == actor and reviewed.payload["review"] == "safe"
    # Nothing was revoked; the next sign-in from London is no longer flagged.
    assert (await site.me(tokens)).status_code == 200
    _, again = await _login(site, "ann", LONDON)
    assert again.verdict not in ("suspicious", "impossible")

    # The first answer ends both links.
    for link in (links["yes"], links["no"]):
        replay = await _answer(site, link)
        assert replay.status_code == 400 and replay.json()["code"] == "invalid_token"
    assert await site.events("login.disowned") == []
    assert await site.deliver() == []


async def test_no_secures_the_account_and_mails_a_reset_link(site: Site):
    tokens, london, links = await _noticed(site, "ann", "ann@example.com")
    other = await signin(site.client, "ann")
    response = await _answer(site, links["no"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "no" and body["review"] == "compromised"
    assert body["sessions_revoked"] >= 3 and body["password_reset_sent"] is True

    for held in (tokens, other):
        assert (await site.me(held)).status_code == 401
    refused = await site.client.post(SIGNIN, json={"username": "ann", "password": STRONG})
    assert refused.status_code == 403 and refused.json()["code"] == "password_reset_required"
    actor = f"user:{tokens['user_id']}"
    [compromised] = await site.events("user.compromised")
    assert compromised.actor == actor and compromised.payload["login_id"] == london.id
    [disowned] = await site.events("login.disowned")
    assert disowned.actor == actor and disowned.payload["login_id"] == london.id
    replay = await _answer(site, links["yes"])
    assert replay.status_code == 400 and replay.json()["code"] == "invalid_token"

    # The owner gets back in with the reset link that came with the answer.
    [reset_link] = site.links(await site.one_message("ann@example.com"))
    assert reset_link.page == "/reset-password"
    done = await site.client.post(RESET, json={"token": reset_link.token, "password": NEW_PASSWORD})
    assert done.status_code == 204, done.text
    assert (await signin(site.client, "ann", NEW_PASSWORD))["username"] == "ann"


async def test_an_unverified_address_is_sent_no_notice(site: Site):
    await site.user("ann", "ann@example.com")
    tokens, login = await _login(site, "ann", LONDON)
    assert await _notify(site, tokens["user_id"], login) is False
    await site.user("nomail", None)
    tokens, login = await _login(site, "nomail", LONDON)
    assert await _notify(site, tokens["user_id"], login) is False
    assert await site.deliver() == []


async def test_a_notice_about_another_users_login_is_not_sent(site: Site):
    ann = await site.user("ann", "ann@example.com", verified=True)
    await site.user("bob", "bob@example.com", verified=True)
    _, bobs = await _login(site, "bob", LONDON)
    assert await _notify(site, ann["user_id"], bobs) is False
    assert await site.deliver() == []


async def test_yes_after_an_admin_said_compromised_is_refused_and_no_still_works(site: Site):
    _, london, links = await _noticed(site, "ann", "ann@example.com")
    admin = await site.client.post(
        f"/api/v1/logins/{london.id}/review",
        json={"verdict": "compromised"},
        headers=bearer(site.admin),
    )
    assert admin.status_code == 200, admin.text
    yes = await _answer(site, links["yes"])
    assert yes.status_code == 409 and yes.json()["code"] == "login_compromised"
    no = await _answer(site, links["no"])
    assert no.status_code == 200 and no.json()["review"] == "compromised"
    assert len(await site.events("user.compromised")) == 1  # the admin's; "no" changed nothing


async def test_a_feedback_token_is_no_reset_token_and_the_reverse(site: Site):
    _, _, links = await _noticed(site, "ann", "ann@example.com")
    wrong = await site.client.post(
        RESET, json={"token": links["yes"].token, "password": NEW_PASSWORD}
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_token"
    await site.client.post("/api/v1/auth/password/forgot", json={"username": "ann"})
    [reset_link] = site.links(await site.one_message("ann@example.com"))
    as_feedback = await site.client.post(FEEDBACK, json={"token": reset_link.token, "answer": "no"})
    assert as_feedback.status_code == 400 and as_feedback.json()["code"] == "invalid_token"
    # Neither was used up by the other endpoint.
    assert (await _answer(site, links["yes"])).status_code == 200


async def test_an_expired_notice_link_is_refused(site: Site):
    _, london, links = await _noticed(site, "ann", "ann@example.com")
    await site.expire(links["no"].token)
    response = await _answer(site, links["no"])
    assert response.status_code == 400 and response.json()["code"] == "invalid_token"
    assert (await _stored(site, london.id)).review is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": "ggf_x"},
        {"answer": "yes"},
        {"token": "ggf_x", "answer": "maybe"},
        {"token": "ggf_x", "answer": True},
        {"token": "ggf_x", "answer": "YES "},
        {"token": "", "answer": "no"},
        {"token": "ggf_x", "answer": "no", "extra": 1},
        ["ggf_x", "no"],
    ],
)
async def test_malformed_feedback_bodies_are_4xx(site: Site, body):
    response = await site.client.post(FEEDBACK, json=body)
    assert 400 <= response.status_code < 500, response.text
