"""API keys over HTTP: shown once, accepted in X-API-KEY (any case), every bad key a clean 401,
scopes bounded by the owner's permissions, last_used_at bookkeeping, revocation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from globeguard.identity.models import ApiKey
from tests.helpers import bearer, make_admin, signin, signup

KEYS = "/api/v1/api-keys"
ME = "/api/v1/users/me"


async def create_key(client: httpx.AsyncClient, tokens: dict[str, Any], **body: Any) -> dict:
    response = await client.post(KEYS, headers=bearer(tokens), json={"name": "ci", **body})
    assert response.status_code == 201, response.text
    return response.json()


def key_header(api_key: str, name: str = "X-API-KEY") -> dict[str, str]:
    return {name: api_key}


async def assert_key_rejected(client: httpx.AsyncClient, api_key: str) -> None:
    response = await client.get(ME, headers=key_header(api_key))
    assert response.status_code == 401, (api_key[:80], response.text)
    assert response.json()["code"] == "invalid_api_key"


async def key_row(container, key_id: str) -> dict[str, Any]:
    """The stored row's columns, read straight from the database."""
    async with container.db.read() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        assert row is not None
        return {c.key: getattr(row, c.key) for c in ApiKey.__table__.columns}


async def test_create_shows_the_secret_once(client, container):
    user = await signup(client, "keymaker")
    key = await create_key(client, user)
    assert key["api_key"].startswith("ggk_")
    assert key["name"] == "ci" and key["scopes"] == ["profile"]
    assert key["user_id"] == user["user_id"]
    assert key["key_id"] in key["api_key"]
    assert key["revoked_at"] is None and key["last_used_at"] is None

    listed = await client.get(KEYS, headers=bearer(user))
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()] == [key["id"]]
    assert "api_key" not in listed.json()[0]
    # The secret may itself hold "_": it is whatever follows the key id.
    secret = key["api_key"].removeprefix(f"ggk_{key['key_id']}_")
    assert len(secret) >= 40 and secret not in listed.text

    # the database keeps neither the key nor its secret part
    row = await key_row(container, key["key_id"])
    assert not any(secret in str(value) for value in row.values())
    assert row["secret_hash"] != secret and len(row["secret_hash"]) == 64


async def test_key_works_in_either_header_case(client):
    user = await signup(client, "casey")
    key = await create_key(client, user)
    for name in ("X-API-KEY", "x-api-key", "X-Api-Key"):
        response = await client.get(ME, headers=key_header(key["api_key"], name))
        assert response.status_code == 200, name
        assert response.json()["id"] == user["user_id"]


def _fake_key(key_id: str = "abcdefghijklmnop", secret: str = "A" * 43) -> str:
    return f"ggk_{key_id}_{secret}"


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param("spice", id="word"),
        pytest.param("ggk_", id="prefix-only"),
        pytest.param("x" * 10 * 1024, id="10KB"),
        pytest.param("ggk_" + "a" * 10 * 1024, id="10KB-prefixed"),
        pytest.param(str(uuid.UUID(int=0x1234)), id="uuid-like-authhero"),
        pytest.param(_fake_key(), id="unknown-well-formed"),
        pytest.param(_fake_key(key_id="ABCDEFGHIJKLMNOP"), id="uppercase-key-id"),
        pytest.param(_fake_key(secret="A" * 42), id="short-secret"),
        pytest.param(_fake_key() + "!!", id="trailing-junk"),
        pytest.param(_fake_key().encode() + "\u00e9".encode(), id="non-ascii-bytes"),
        pytest.param(b"\xff\xfe\x00garbage", id="binary"),
        pytest.param("Bearer " + _fake_key(), id="scheme-prefixed"),
    ],
)
async def test_bad_keys_are_401_never_500(client, presented):
    response = await client.get(ME, headers={"X-API-KEY": presented})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_api_key"


async def test_empty_key_is_unauthenticated(client):
    response = await client.get(ME, headers={"X-API-KEY": ""})
    assert response.status_code == 401
    assert response.json()["code"] in {"invalid_api_key", "not_authenticated"}


async def test_wrong_secret_for_a_real_key_id(client):
    user = await signup(client, "guesser")
    key = await create_key(client, user)
    real_secret = key["api_key"].rsplit("_", 1)[1]
    wrong = "B" * 43 if real_secret != "B" * 43 else "C" * 43
    await assert_key_rejected(client, _fake_key(key_id=key["key_id"], secret=wrong))
    # the real one still works
    assert (await client.get(ME, headers=key_header(key["api_key"]))).status_code == 200


async def test_api_key_is_not_a_bearer_token(client):
    user = await signup(client, "confused")
    key = await create_key(client, user)
    response = await client.get(ME, headers={"Authorization": f"Bearer {key['api_key']}"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_revoked_key_is_rejected(client):
    user = await signup(client, "revoker")
    other = await signup(client, "meddler")
    key = await create_key(client, user)
    assert (await client.get(ME, headers=key_header(key["api_key"]))).status_code == 200

    not_theirs = await client.delete(f"{KEYS}/{key['id']}", headers=bearer(other))
    assert not_theirs.status_code == 404
    assert not_theirs.json()["code"] == "api_key_not_found"
    assert (await client.get(ME, headers=key_header(key["api_key"]))).status_code == 200

    revoked = await client.delete(f"{KEYS}/{key['id']}", headers=bearer(user))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    await assert_key_rejected(client, key["api_key"])


async def test_expired_key_is_rejected(client, monkeypatch):
    user = await signup(client, "mayfly")
    past = await client.post(
        KEYS,
        headers=bearer(user),
        json={"name": "old", "expires_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
    )
    assert past.status_code == 422
    assert past.json()["code"] == "invalid_expiry"

    key = await create_key(
        client, user, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()
    )
    assert key["expires_at"] is not None
    assert (await client.get(ME, headers=key_header(key["api_key"]))).status_code == 200

    # A day and a minute later (the key's resolution may be cached; its expiry is not).
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    monkeypatch.setattr("globeguard.identity.api_keys.service.utcnow", lambda: later)
    await assert_key_rejected(client, key["api_key"])


async def test_scopes_are_bounded_by_the_owner(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "plainkey")
    beyond = await client.post(
        KEYS, headers=bearer(user), json={"name": "sneaky", "scopes": ["users:read"]}
    )
    assert beyond.status_code == 403
    assert beyond.json()["code"] == "scope_not_allowed"
    assert (await client.get(KEYS, headers=bearer(user))).json() == []

    reader = await create_key(client, admin, name="reader", scopes=["users:read"])
    users = await client.get("/api/v1/users", headers=key_header(reader["api_key"]))
    assert users.status_code == 200
    assert {u["username"] for u in users.json()["items"]} == {"root", "plainkey"}
    write = await client.post(
        f"/api/v1/users/{user['user_id']}/block", headers=key_header(reader["api_key"])
    )
    assert write.status_code == 403

    profile_only = await create_key(client, admin, name="self", scopes=["profile"])
    assert (await client.get(ME, headers=key_header(profile_only["api_key"]))).status_code == 200
    for method, url in (
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/roles"),
        ("POST", f"/api/v1/users/{user['user_id']}/block"),
    ):
        response = await client.request(method, url, headers=key_header(profile_only["api_key"]))
        assert response.status_code == 403, (method, url)


async def test_key_scopes_shrink_with_the_owners_roles(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "demoted")
    role = await client.post(
        "/api/v1/roles",
        headers=bearer(admin),
        json={"name": "viewer", "permissions": ["users:read"]},
    )
    assert role.status_code == 201
    assigned = await client.post(
        f"/api/v1/users/{user['user_id']}/roles", headers=bearer(admin), json={"role": "viewer"}
    )
    assert assigned.status_code == 200
    user = await signin(client, "demoted")
    key = await create_key(client, user, scopes=["profile", "users:read"])
    assert (
        await client.get("/api/v1/users", headers=key_header(key["api_key"]))
    ).status_code == 200

    removed = await client.delete(
        f"/api/v1/users/{user['user_id']}/roles/viewer", headers=bearer(admin)
    )
    assert removed.status_code == 200
    assert (
        await client.get("/api/v1/users", headers=key_header(key["api_key"]))
    ).status_code == 403
    assert (await client.get(ME, headers=key_header(key["api_key"]))).status_code == 200


async def test_last_used_at_is_recorded_once_per_resolution(client, container):
    user = await signup(client, "tracker")
    key = await create_key(client, user)

    async def listed_last_used() -> str | None:
        keys = (await client.get(KEYS, headers=bearer(user))).json()
        return keys[0]["last_used_at"]

    assert await listed_last_used() is None
    assert (await client.get(ME, headers=key_header(key["api_key"]))).status_code == 200
    first = await listed_last_used()
    assert first is not None
    first_row = (await key_row(container, key["key_id"]))["last_used_at"]

    assert (await client.get(ME, headers=key_header(key["api_key"]))).status_code == 200
    assert await listed_last_used() == first
    assert (await key_row(container, key["key_id"]))["last_used_at"] == first_row


async def test_deleting_the_user_kills_the_key(client):
    user = await signup(client, "ephemeral")
    key = await create_key(client, user)
    assert (await client.get(ME, headers=key_header(key["api_key"]))).status_code == 200
    assert (await client.delete(ME, headers=bearer(user))).status_code == 204
    await assert_key_rejected(client, key["api_key"])


async def test_blocking_the_user_suspends_the_key(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "suspended")
    key = await create_key(client, user)
    url = f"/api/v1/users/{user['user_id']}"
    assert (await client.post(f"{url}/block", headers=bearer(admin))).status_code == 200
    await assert_key_rejected(client, key["api_key"])
    assert (await client.post(f"{url}/unblock", headers=bearer(admin))).status_code == 200
    # blocking is a suspension, not a revocation: the key works again
    assert (await client.get(ME, headers=key_header(key["api_key"]))).status_code == 200


async def test_logout_all_can_revoke_keys(client):
    user = await signup(client, "sweeper")
    key = await create_key(client, user)
    out = await client.post(
        "/api/v1/auth/logout-all", headers=bearer(user), json={"include_api_keys": True}
    )
    assert out.status_code == 200
    assert out.json()["api_keys_revoked"] == 1
    await assert_key_rejected(client, key["api_key"])


async def test_a_narrow_key_cannot_manage_its_owners_account(client, container):
    from tests.helpers import bearer, make_admin

    admin = await make_admin(client, container, "keyowner")
    created = await client.post(
        "/api/v1/api-keys",
        headers=bearer(admin),
        json={"name": "ingest only", "scopes": ["login_events:write"]},
    )
    headers = {"X-API-KEY": created.json()["api_key"]}
    user_id = admin["user_id"]
    assert (await client.get(f"/api/v1/users/{user_id}", headers=headers)).status_code == 403
    patched = await client.patch(
        f"/api/v1/users/{user_id}", headers=headers, json={"given_name": "x"}
    )
    assert patched.status_code == 403
    assert (await client.delete(f"/api/v1/users/{user_id}", headers=headers)).status_code == 403
