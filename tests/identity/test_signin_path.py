"""The sign-in's own writes: the account as counted by this sign-in in the response, a session
whose refresh token works, and an account changed while its password was being hashed."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update

from globeguard.identity.models import AuthSession, User
from globeguard.travel.models import LoginEvent
from tests.helpers import STRONG, bearer, make_admin, signin, signup

SIGNIN = "/api/v1/auth/signin"


async def sessions_of(container, user_id: str) -> int:
    async with container.db.read() as session:
        query = select(func.count()).where(AuthSession.user_id == uuid.UUID(user_id))
        return int(await session.scalar(query) or 0)


async def test_signin_answers_with_the_account_as_this_signin_left_it(client):
    created = await signup(client, "counted")
    assert created["user"]["logins_count"] == 0

    first = await signin(client, "counted")
    second = await signin(client, "counted")

    assert first["user"]["logins_count"] == 1
    assert second["user"]["logins_count"] == 2
    assert second["user"]["last_login_at"] >= first["user"]["last_login_at"]
    assert second["user"]["updated_at"] >= second["user"]["created_at"]
    assert second["user"]["roles"] == ["user"]
    me = (await client.get("/api/v1/users/me", headers=bearer(second))).json()
    assert me["logins_count"] == 2
    assert me["last_login_at"] == second["user"]["last_login_at"]


async def test_each_signin_opens_a_session_whose_refresh_token_works(client, container):
    created = await signup(client, "refresher")
    before = await sessions_of(container, created["user_id"])

    tokens = await signin(client, "refresher")

    assert await sessions_of(container, created["user_id"]) == before + 1
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]


def change_during_hash(container, monkeypatch, user_id: str, **values) -> None:
    """Make the next verify change the account (as a concurrent request would) after the
    password was read and before the sign-in is recorded."""
    real_verify = container.hasher.verify

    async def verify_then_change(stored_hash, password):
        verdict = await real_verify(stored_hash, password)
        async with container.db.transaction() as session:
            await session.execute(
                update(User).where(User.id == uuid.UUID(user_id)).values(**values)
            )
        return verdict

    monkeypatch.setattr(container.hasher, "verify", verify_then_change)


async def failures_of(client, admin, user_id: str) -> list[str]:
    response = await client.get(
        "/api/v1/audit",
        headers=bearer(admin),
        params={"user_id": user_id, "type": "user.signin.failed"},
    )
    return [e["payload"]["reason"] for e in response.json()["items"]]


async def test_password_changed_while_hashing_refuses_the_signin(client, container, monkeypatch):
    admin = await make_admin(client, container)
    created = await signup(client, "rekeyed")
    user_id = created["user_id"]
    before = await sessions_of(container, user_id)
    change_during_hash(container, monkeypatch, user_id, password_hash="$argon2id$replaced")

    response = await client.post(SIGNIN, json={"username": "rekeyed", "password": STRONG})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert await sessions_of(container, user_id) == before
    assert await failures_of(client, admin, user_id) == ["invalid_credentials"]
    async with container.db.read() as session:
        user = await session.get(User, uuid.UUID(user_id))
        assert user is not None and user.logins_count == 0


async def test_a_signin_refused_after_its_hash_leaves_a_failed_login(
    client, container, monkeypatch
):
    """Its login event was stored as a success before the account's change showed; the
    refusal turns it into the failure it was."""
    created = await signup(client, "rekeyedlogin")
    user_id = uuid.UUID(created["user_id"])
    change_during_hash(container, monkeypatch, created["user_id"], password_hash="$argon2id$x")

    response = await client.post(SIGNIN, json={"username": "rekeyedlogin", "password": STRONG})

    assert response.status_code == 401
    async with container.db.read() as session:
        query = select(LoginEvent).where(LoginEvent.user_id == user_id)
        events = (await session.scalars(query.order_by(LoginEvent.id))).all()
    assert [(e.success, e.failure_reason) for e in events][-1:] == [(False, "invalid_credentials")]


async def test_account_blocked_while_hashing_refuses_the_signin(client, container, monkeypatch):
    admin = await make_admin(client, container)
    created = await signup(client, "blockedlate")
    user_id = created["user_id"]
    before = await sessions_of(container, user_id)
    change_during_hash(container, monkeypatch, user_id, status="blocked")

    response = await client.post(SIGNIN, json={"username": "blockedlate", "password": STRONG})

    assert response.status_code == 401
    assert await sessions_of(container, user_id) == before
    assert await failures_of(client, admin, user_id) == ["invalid_credentials"]


async def test_role_removed_while_hashing_is_not_in_the_new_token(client, container, monkeypatch):
    admin = await make_admin(client, container)
    created = await signup(client, "demoted")
    user_id = created["user_id"]
    granted = await client.post(
        f"/api/v1/users/{user_id}/roles", headers=bearer(admin), json={"role": "admin"}
    )
    assert granted.status_code == 200, granted.text
    real_verify = container.hasher.verify

    async def verify_then_demote(stored_hash, password):
        verdict = await real_verify(stored_hash, password)
        removed = await client.delete(f"/api/v1/users/{user_id}/roles/admin", headers=bearer(admin))
        assert removed.status_code == 200, removed.text
        return verdict

    monkeypatch.setattr(container.hasher, "verify", verify_then_demote)

    tokens = await signin(client, "demoted")

    assert tokens["user"]["roles"] == ["user"]
    listing = await client.get("/api/v1/users", headers=bearer(tokens))
    assert listing.status_code == 403, "a role removed during the sign-in still worked"
