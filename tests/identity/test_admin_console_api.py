"""What the dashboard's admin console needs beyond the user endpoints: an admin ending every
session of another account (`POST /users/{id}/logout-all`), and listing its API keys."""

from __future__ import annotations

import uuid

import httpx

from tests.helpers import bearer, make_admin, signin, signup

USERS = "/api/v1/users"
ME = "/api/v1/users/me"
KEYS = "/api/v1/api-keys"
REFRESH = "/api/v1/auth/refresh"


async def new_key(client: httpx.AsyncClient, tokens: dict, name: str = "script") -> dict:
    created = await client.post(KEYS, headers=bearer(tokens), json={"name": name})
    assert created.status_code == 201, created.text
    return created.json()


def logout_all(user_id: str) -> str:
    return f"{USERS}/{user_id}/logout-all"


async def test_an_admin_ends_every_session_of_a_user(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "traveller")
    second = await signin(client, "traveller")
    key = await new_key(client, second)

    ended = await client.post(logout_all(user["user_id"]), headers=bearer(admin))

    assert ended.status_code == 200, ended.text
    assert ended.json() == {"sessions_revoked": 2, "api_keys_revoked": 0}
    for tokens in (user, second):
        stale = await client.get(ME, headers=bearer(tokens))
        assert stale.status_code == 401 and stale.json()["code"] == "invalid_token"
        refreshed = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 400, refreshed.text
    sessions = await client.get(f"{USERS}/{user['user_id']}/sessions", headers=bearer(admin))
    assert sessions.status_code == 200 and sessions.json() == []
    # the key was not asked for: it still works; the admin's own session carries on
    assert (await client.get(ME, headers={"X-API-KEY": key["api_key"]})).status_code == 200
    assert (await client.get(ME, headers=bearer(admin))).status_code == 200
    # the user signs in again as before
    assert (
        await client.get(ME, headers=bearer(await signin(client, "traveller")))
    ).status_code == 200


async def test_asked_to_the_keys_go_too(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "keyholder")
    key = await new_key(client, user)

    ended = await client.post(
        logout_all(user["user_id"]), headers=bearer(admin), json={"include_api_keys": True}
    )

    assert ended.status_code == 200
    assert ended.json() == {"sessions_revoked": 1, "api_keys_revoked": 1}
    rejected = await client.get(ME, headers={"X-API-KEY": key["api_key"]})
    assert rejected.status_code == 401 and rejected.json()["code"] == "invalid_api_key"
    listed = await client.get(KEYS, params={"user_id": user["user_id"]}, headers=bearer(admin))
    assert [k["revoked_at"] is not None for k in listed.json()] == [True]


async def test_only_a_user_admin_may_log_others_out(client, container):
    await make_admin(client, container)
    victim = await signup(client, "victim")
    other = await signup(client, "mallory")

    denied = await client.post(logout_all(victim["user_id"]), headers=bearer(other))

    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    assert (await client.get(ME, headers=bearer(victim))).status_code == 200
    assert (await client.post(logout_all(victim["user_id"]))).status_code == 401


async def test_an_operator_without_every_permission_cannot_log_an_admin_out(client, container):
    admin = await make_admin(client, container)
    role = await client.post(
        "/api/v1/roles",
        headers=bearer(admin),
        json={"name": "operator", "permissions": ["users:read", "users:write"]},
    )
    assert role.status_code == 201, role.text
    operator = await signup(client, "operator1")
    assigned = await client.post(
        f"{USERS}/{operator['user_id']}/roles", headers=bearer(admin), json={"role": "operator"}
    )
    assert assigned.status_code == 200
    operator = await signin(client, "operator1")
    plain = await signup(client, "plainuser")

    refused = await client.post(logout_all(admin["user_id"]), headers=bearer(operator))
    allowed = await client.post(logout_all(plain["user_id"]), headers=bearer(operator))

    assert refused.status_code == 403 and refused.json()["code"] == "admin_target"
    assert (await client.get(ME, headers=bearer(admin))).status_code == 200
    assert allowed.status_code == 200 and allowed.json()["sessions_revoked"] == 1


async def test_unknown_deleted_and_malformed_users(client, container):
    admin = await make_admin(client, container)
    gone = await signup(client, "goneuser")
    deleted = await client.delete(f"{USERS}/{gone['user_id']}", headers=bearer(admin))
    assert deleted.status_code == 204

    unknown = await client.post(logout_all(str(uuid.uuid4())), headers=bearer(admin))
    of_deleted = await client.post(logout_all(gone["user_id"]), headers=bearer(admin))
    malformed = await client.post(logout_all("not-a-uuid"), headers=bearer(admin))
    extra = await client.post(
        logout_all(gone["user_id"]), headers=bearer(admin), json={"everything": True}
    )

    assert unknown.status_code == 404
    assert of_deleted.status_code == 404
    assert malformed.status_code == 422
    assert extra.status_code == 422


async def test_admins_list_another_users_keys_and_users_do_not(client, container):
    admin = await make_admin(client, container)
    owner = await signup(client, "keyowner")
    key = await new_key(client, owner, "deploy")
    nosy = await signup(client, "nosy")

    listed = await client.get(KEYS, params={"user_id": owner["user_id"]}, headers=bearer(admin))
    refused = await client.get(KEYS, params={"user_id": owner["user_id"]}, headers=bearer(nosy))

    assert listed.status_code == 200
    assert [(k["key_id"], k["name"]) for k in listed.json()] == [(key["key_id"], "deploy")]
    assert "api_key" not in listed.json()[0]
    assert refused.status_code == 403
