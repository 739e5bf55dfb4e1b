"""Breached and common passwords through the API, with the range API a real HTTP server on
loopback (fake_range.py) speaking the protocol, padding included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from globeguard.identity.bootstrap import create_admin
from globeguard.identity.users.repository import UserRepository
from globeguard.kit.errors import Unprocessable
from globeguard.wiring import Container
from tests.account.breached.conftest import BREACHED, PADDED, TIMES_SEEN
from tests.account.breached.fake_range import FakeRange, sha1_hex
from tests.helpers import STRONG, bearer, signin, signup

SIGNUP = "/api/v1/auth/signup"
CHANGE = "/api/v1/users/me/password"
NEW = "a-completely-new-passphrase-9"
COMMON = "Password1"


async def _exists(container: Container, username: str) -> bool:
    async with container.db.read() as session:
        return await UserRepository(session).username_taken(username.lower())


def _checks(container: Container, outcome: str) -> float:
    value = container.metrics.registry.get_sample_value(
        "globeguard_breached_password_checks_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_a_breached_password_is_refused_at_signup_and_nothing_is_created(
    client: httpx.AsyncClient, container: Container, fake_range: FakeRange
):
    refused = await client.post(SIGNUP, json={"username": "nina", "password": BREACHED})
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "password_breached"
    assert problem["times_seen"] == TIMES_SEEN
    assert f"{TIMES_SEEN:,} times" in problem["detail"]
    assert BREACHED not in refused.text
    assert not await _exists(container, "nina")
    no_account = await client.post(
        "/api/v1/auth/signin", json={"username": "nina", "password": BREACHED}
    )
    assert no_account.status_code == 401
    assert _checks(container, "breached") == 1
    # The name is still free: the same person tries again with another password.
    assert (await signup(client, "nina"))["username"] == "nina"
    assert _checks(container, "clean") == 1


async def test_a_common_password_is_refused_without_asking_the_api(
    client: httpx.AsyncClient, container: Container, fake_range: FakeRange
):
    for password in (COMMON, "qwerty123", "iloveyou!"):
        refused = await client.post(SIGNUP, json={"username": "omar", "password": password})
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "password_too_common"
    assert fake_range.requests == []  # a password refused locally is never sent anywhere
    assert not await _exists(container, "omar")


async def test_only_a_five_digit_prefix_leaves_the_server(
    client: httpx.AsyncClient, fake_range: FakeRange
):
    await signup(client, "pia")  # clean
    await signup(client, "quinn", password=PADDED)  # its suffix is only a padding line
    await client.post(SIGNUP, json={"username": "rosa", "password": BREACHED})
    passwords = (STRONG, PADDED, BREACHED)
    assert [r.path for r in fake_range.requests] == [f"/range/{sha1_hex(p)[:5]}" for p in passwords]
    for request in fake_range.requests:
        assert re.fullmatch(r"/range/[0-9A-F]{5}", request.path)
        assert request.headers["Add-Padding"] == "true"
        assert request.body == b""
        sent = request.path + repr(request.headers)
        for password in passwords:
            assert password not in sent
            assert sha1_hex(password)[5:] not in sent and sha1_hex(password)[5:].lower() not in sent


async def test_changing_to_a_breached_or_common_password_is_refused(
    client: httpx.AsyncClient, fake_range: FakeRange
):
    tokens = await signup(client, "sam")
    for password, code in ((BREACHED, "password_breached"), (COMMON, "password_too_common")):
        refused = await client.post(
            CHANGE,
            headers=bearer(tokens),
            json={"current_password": STRONG, "new_password": password},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == code
    assert (await signin(client, "sam"))["username"] == "sam"  # the old one still works
    done = await client.post(
        CHANGE, headers=bearer(tokens), json={"current_password": STRONG, "new_password": NEW}
    )
    assert done.status_code == 204
    assert (await signin(client, "sam", NEW))["username"] == "sam"


async def test_an_admin_cannot_be_created_with_a_breached_password(
    app: Any, container: Container, fake_range: FakeRange
):
    # The path of `globeguard admin create` and of the bootstrap admin.
    with pytest.raises(Unprocessable) as refused:
        async with container.db.transaction() as session:
            await create_admin(container.users, session, "root", BREACHED, None)
    assert refused.value.code == "password_breached"
    assert not await _exists(container, "root")
    with pytest.raises(Unprocessable) as common:
        async with container.db.transaction() as session:
            await create_admin(container.users, session, "root", COMMON, None)
    assert common.value.code == "password_too_common"
    async with container.db.transaction() as session:
        await create_admin(container.users, session, "root", STRONG, None)
    assert await _exists(container, "root")


_traced: ContextVar[bool] = ContextVar("traced", default=False)


@pytest.fixture
def steps(container: Container, fake_range: FakeRange) -> Iterator[list[str]]:
    """Each writer BEGIN of the traced request and each request the range API received, in
    order. Background loops of the app also write; only the traced request's count."""
    seen: list[str] = []
    writer = container.db.engine.sync_engine

    def on_begin(conn: Any) -> None:
        # On PostgreSQL reads share the writer's pool in autocommit: no transaction there.
        autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        if _traced.get() and not autocommit:
            seen.append("begin")

    fake_range.on_request = lambda: seen.append("range")
    event.listen(writer, "begin", on_begin)
    try:
        yield seen
    finally:
        event.remove(writer, "begin", on_begin)


@pytest.mark.parametrize("password", [STRONG, BREACHED])
async def test_the_api_is_asked_before_the_write_transaction_begins(
    client: httpx.AsyncClient, steps: list[str], password: str
):
    token = _traced.set(True)
    try:
        response = await client.post(SIGNUP, json={"username": "tess", "password": password})
    finally:
        _traced.reset(token)
    assert response.status_code == (201 if password == STRONG else 422), response.text
    assert steps[0] == "range", steps
    assert steps.count("range") == 1
    if password == STRONG:
        assert "begin" in steps  # it did write, afterwards
