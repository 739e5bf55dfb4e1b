"""A password set by reset link goes through the same check as sign-up and change."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from globeguard.account.links import email_binding
from globeguard.account.one_time import OneTimeTokens, Purpose
from globeguard.wiring import Container
from tests.account.breached.conftest import BREACHED
from tests.helpers import signin, signup

RESET = "/api/v1/auth/password/reset"
NEW = "a-completely-new-passphrase-9"


async def _reset_token(container: Container, user_id: str, email: str) -> str:
    # As the forgot-password mail would carry it (bound to the address it went to).
    async with container.db.transaction() as session:
        return await OneTimeTokens().issue(
            session,
            Purpose.PASSWORD_RESET,
            uuid.UUID(user_id),
            timedelta(minutes=30),
            email_binding(email.lower()),
        )


async def test_a_reset_to_a_breached_or_common_password_is_refused_and_the_link_still_works(
    client: httpx.AsyncClient, container: Container
):
    made = await signup(client, "wren", email="wren@example.com")
    token = await _reset_token(container, made["user_id"], "wren@example.com")
    for password, code in (
        (BREACHED, "password_breached"),
        ("Password123!", "password_too_common"),
    ):
        refused = await client.post(RESET, json={"token": token, "password": password})
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == code
    assert (await signin(client, "wren"))["username"] == "wren"  # nothing changed
    done = await client.post(RESET, json={"token": token, "password": NEW})
    assert done.status_code == 204, done.text
    assert (await signin(client, "wren", NEW))["username"] == "wren"
