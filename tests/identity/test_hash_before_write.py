"""Password work (argon2 hash and verify, zxcvbn scoring) finishes before the request's write
transaction begins. On SQLite the writer is the process's one connection and BEGIN IMMEDIATE
takes the file's write lock, so 50-130 ms of hashing inside it made every other write wait."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pytest
from sqlalchemy import event

from globeguard.identity.bootstrap import create_admin, ensure_bootstrap_admin
from globeguard.identity.users import service as user_service
from tests.helpers import STRONG, bearer, signin, signup

CHANGE = "/api/v1/users/me/password"
NEW = "a-completely-new-passphrase-9"
OTHER = "yet-another-passphrase-for-erin-4"
PASSWORD_WORK = {"hash", "verify", "score"}

# Set around the work under test: background loops of the app (outbox delivery, jobs,
# retention) also begin write transactions, and those are not the request's.
_traced: ContextVar[bool] = ContextVar("traced", default=False)


@pytest.fixture
def steps(container, monkeypatch) -> Iterator[list[str]]:
    """What happened, in order: each writer BEGIN of the traced work and each hash, verify
    and strength score as it finished."""
    seen: list[str] = []
    writer = container.db.engine.sync_engine

    def on_begin(conn: Any) -> None:
        # On PostgreSQL reads share the writer's pool in autocommit: no transaction there.
        autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        if _traced.get() and not autocommit:
            seen.append("begin")

    hasher = container.hasher
    real_hash, real_verify, real_score = hasher.hash, hasher.verify, user_service.zxcvbn

    async def hash_(password: str) -> str:
        hashed = await real_hash(password)
        seen.append("hash")
        return hashed

    async def verify(stored: str | None, password: str) -> Any:
        verdict = await real_verify(stored, password)
        seen.append("verify")
        return verdict

    def score(*args: Any) -> Any:
        result = real_score(*args)
        seen.append("score")
        return result

    monkeypatch.setattr(hasher, "hash", hash_)
    monkeypatch.setattr(hasher, "verify", verify)
    monkeypatch.setattr(user_service, "zxcvbn", score)
    event.listen(writer, "begin", on_begin)
    try:
        yield seen
    finally:
        event.remove(writer, "begin", on_begin)


@contextmanager
def traced(steps: list[str]) -> Iterator[None]:
    """Trace only what runs inside the block (and the tasks it starts)."""
    steps.clear()
    token = _traced.set(True)
    try:
        yield
    finally:
        _traced.reset(token)


def assert_password_work_first(steps: list[str], expected: set[str]) -> None:
    assert "begin" in steps, steps  # the request did write
    assert expected <= set(steps), steps
    first_begin = steps.index("begin")
    last_work = max(i for i, step in enumerate(steps) if step in PASSWORD_WORK)
    assert last_work < first_begin, f"password work inside the write transaction: {steps}"


async def test_signup_hashes_before_it_writes(client, steps):
    with traced(steps):
        await signup(client, "alice")
    assert_password_work_first(steps, {"score", "hash"})


async def test_a_taken_username_is_refused_after_the_same_work(client, steps):
    await signup(client, "bob")
    with traced(steps):
        taken = await client.post(
            "/api/v1/auth/signup", json={"username": "BOB", "password": STRONG}
        )
    assert taken.status_code == 409 and taken.json()["code"] == "username_taken"
    assert_password_work_first(steps, {"score", "hash"})


async def test_creating_an_admin_hashes_before_it_writes(app, container, steps):
    with traced(steps):
        async with container.db.transaction() as session:
            await create_admin(container.users, session, "root", STRONG, None)
    assert_password_work_first(steps, {"score", "hash"})


async def test_the_bootstrap_admin_is_hashed_before_its_transaction(app, container, steps):
    with traced(steps):
        made = await ensure_bootstrap_admin(container.users, container.db, "boot", STRONG, None)
    assert made is not None and made.username == "boot"
    assert_password_work_first(steps, {"score", "hash"})
    with traced(steps):  # idempotent: an existing admin costs no hash and no write
        again = await ensure_bootstrap_admin(container.users, container.db, "boot", STRONG, None)
    assert again is None and steps == []


async def test_a_password_change_verifies_and_hashes_before_it_writes(client, steps):
    here = await signup(client, "carol")
    with traced(steps):
        done = await client.post(
            CHANGE, headers=bearer(here), json={"current_password": STRONG, "new_password": NEW}
        )
    assert done.status_code == 204, done.text
    assert_password_work_first(steps, {"verify", "score", "hash"})
    assert (await signin(client, "carol", NEW))["username"] == "carol"


async def test_a_wrong_current_password_never_opens_a_write(client, steps):
    here = await signup(client, "dave")
    with traced(steps):
        wrong = await client.post(
            CHANGE,
            headers=bearer(here),
            json={"current_password": "not-the-password-at-all", "new_password": NEW},
        )
    assert wrong.status_code == 403 and wrong.json()["code"] == "invalid_current_password"
    assert steps == ["verify"]


async def test_a_password_changed_meanwhile_is_not_overwritten(client, container, monkeypatch):
    """Between this request's read of the account and its write, another device changes the
    password: this change is refused, and the one that was made stands."""
    here = await signup(client, "erin")
    there = await signin(client, "erin")
    real_hash = container.hasher.hash
    raced = []

    async def hash_then_race(password: str) -> str:
        hashed = await real_hash(password)
        if password == NEW and not raced:  # after our hash, before our write
            body = {"current_password": STRONG, "new_password": OTHER}
            raced.append(await client.post(CHANGE, headers=bearer(there), json=body))
        return hashed

    monkeypatch.setattr(container.hasher, "hash", hash_then_race)
    late = await client.post(
        CHANGE, headers=bearer(here), json={"current_password": STRONG, "new_password": NEW}
    )
    assert raced[0].status_code == 204, raced[0].text
    assert late.status_code == 409, late.text
    assert late.json()["code"] == "password_changed_concurrently"
    assert (await signin(client, "erin", OTHER))["username"] == "erin"
    overwritten = await client.post(
        "/api/v1/auth/signin", json={"username": "erin", "password": NEW}
    )
    assert overwritten.status_code == 401
