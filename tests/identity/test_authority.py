"""Nothing grants more than the credential presenting it holds: API keys, machine clients,
roles and role assignments; `clients:manage` and `jobs:manage` do their own job only;
another admin's account needs an admin."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.identity.authority import acts_as_admin, beyond, ensure_grantable
from globeguard.identity.permissions import ALL_PERMISSIONS, ALL_SCOPES, Permission
from globeguard.kit.errors import Forbidden
from tests.helpers import STRONG, bearer, make_admin, signin, signup
from tests.jobs.support import wait_job

API_KEYS = "/api/v1/api-keys"
SCOPES = sorted(ALL_SCOPES)


@pytest.mark.parametrize(
    ("presenter", "requested", "missing"),
    [
        ({"profile"}, [], []),
        ({"profile"}, ["profile"], []),
        ({"profile"}, ["users:delete", "roles:manage"], ["roles:manage", "users:delete"]),
        ({"clients:manage"}, ["clients:manage", "jobs:manage"], ["jobs:manage"]),
        (ALL_SCOPES, SCOPES, []),
        (set(), ["profile", "profile"], ["profile"]),
    ],
)
def test_beyond_names_each_scope_the_presenter_lacks_once(presenter, requested, missing):
    assert beyond(presenter, requested) == missing


@given(st.sets(st.sampled_from(SCOPES)), st.sets(st.sampled_from(SCOPES)))
def test_a_grant_passes_exactly_when_it_is_a_subset_of_the_presenter(presenter, requested):
    if requested <= presenter:
        ensure_grantable(presenter, requested, "an API key")
        return
    with pytest.raises(Forbidden) as refused:
        ensure_grantable(presenter, requested, "an API key")
    assert refused.value.code == "scope_not_allowed"


@pytest.mark.parametrize(
    ("scopes", "admin"),
    [
        (ALL_SCOPES, True),
        (ALL_PERMISSIONS, True),
        (ALL_SCOPES - {Permission.USERS_PASSWORD_HASHES}, False),
        ({"profile"}, False),
        (set(), False),
    ],
)
def test_acting_as_admin_needs_every_permission(scopes, admin):
    assert acts_as_admin(scopes) is admin


async def _admin_key(client, admin_headers, scopes) -> dict[str, str]:
    response = await client.post(
        API_KEYS, headers=admin_headers, json={"name": "narrow", "scopes": sorted(scopes)}
    )
    assert response.status_code == 201, response.text
    return {"X-API-KEY": response.json()["api_key"]}


async def _profile_token(client) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "root", "password": STRONG, "scope": "profile"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "profile"
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_an_admin_token_scoped_to_profile_cannot_mint_a_wider_api_key(client, container):
    await make_admin(client, container)
    narrow = await _profile_token(client)
    response = await client.post(
        API_KEYS, headers=narrow, json={"name": "grow", "scopes": ["users:delete", "roles:manage"]}
    )
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "scope_not_allowed"
    assert response.json()["scopes"] == ["roles:manage", "users:delete"]
    # What it holds it may still hand out.
    same = await client.post(API_KEYS, headers=narrow, json={"name": "same"})
    assert same.status_code == 201 and same.json()["scopes"] == ["profile"]


async def test_a_profile_only_api_key_cannot_mint_a_wider_one(client, container):
    admin = bearer(await make_admin(client, container))
    key = await _admin_key(client, admin, ["profile"])
    response = await client.post(API_KEYS, headers=key, json={"name": "grow", "scopes": SCOPES})
    assert response.status_code == 403
    listed = await client.get(API_KEYS, headers=admin)
    assert [k["name"] for k in listed.json()] == ["narrow"]


async def test_an_unknown_scope_is_a_422_not_a_key(client, container):
    admin = bearer(await make_admin(client, container))
    response = await client.post(API_KEYS, headers=admin, json={"name": "x", "scopes": ["root"]})
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_scope"


async def test_clients_manage_creates_only_clients_within_its_own_permissions(client, container):
    admin = bearer(await make_admin(client, container))
    key = await _admin_key(client, admin, ["clients:manage"])
    wide = await client.post(
        "/api/v1/clients",
        headers=key,
        json={"name": "wide", "scopes": ["roles:manage", "users:delete", "jobs:manage"]},
    )
    assert wide.status_code == 403, wide.text
    assert wide.json()["scopes"] == ["jobs:manage", "roles:manage", "users:delete"]
    listed = await client.get("/api/v1/clients", headers=key)
    assert listed.json() == []
    own = await client.post(
        "/api/v1/clients", headers=key, json={"name": "own", "scopes": ["clients:manage"]}
    )
    assert own.status_code == 201, own.text
    token = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": own.json()["client_id"],
            "client_secret": own.json()["client_secret"],
        },
    )
    assert token.json()["scope"] == "clients:manage"


async def test_roles_manage_cannot_build_or_assign_a_role_beyond_itself(client, container):
    admin = bearer(await make_admin(client, container))
    key = await _admin_key(client, admin, ["profile", "roles:manage"])
    role = await client.post(
        "/api/v1/roles", headers=key, json={"name": "wide", "permissions": ["users:delete"]}
    )
    assert role.status_code == 403
    me = (await client.get("/api/v1/users/me", headers=key)).json()["id"]
    alice = (await signup(client, "alice"))["user"]["id"]
    for target in (me, alice):
        grant = await client.post(
            f"/api/v1/users/{target}/roles", headers=key, json={"role": "admin"}
        )
        assert grant.status_code == 403, grant.text
    # A role within its own permissions is fine, and so is assigning it to a plain user.
    small = await client.post(
        "/api/v1/roles", headers=key, json={"name": "small", "permissions": ["roles:manage"]}
    )
    assert small.status_code == 201, small.text
    given_role = await client.post(
        f"/api/v1/users/{alice}/roles", headers=key, json={"role": "small"}
    )
    assert given_role.status_code == 200 and "small" in given_role.json()["roles"]
    # ...but not widening that role afterwards.
    widened = await client.patch(
        f"/api/v1/roles/{small.json()['id']}",
        headers=key,
        json={"permissions": ["roles:manage", "users:delete"]},
    )
    assert widened.status_code == 403


async def test_a_role_filled_by_an_admin_is_not_changed_by_a_narrower_manager(client, container):
    admin = bearer(await make_admin(client, container))
    wide = await client.post(
        "/api/v1/roles", headers=admin, json={"name": "ops", "permissions": ["users:delete"]}
    )
    key = await _admin_key(client, admin, ["roles:manage"])
    for attempt in (
        client.patch(f"/api/v1/roles/{wide.json()['id']}", headers=key, json={"permissions": []}),
        client.delete(f"/api/v1/roles/{wide.json()['id']}", headers=key),
    ):
        assert (await attempt).status_code == 403
    assert (await client.get(f"/api/v1/roles/{wide.json()['id']}", headers=admin)).json()[
        "permissions"
    ] == ["users:delete"]


async def _second_admin(client, container) -> tuple[str, dict[str, str]]:
    await make_admin(client, container, "second")
    tokens = await signin(client, "second")
    return tokens["user"]["id"], bearer(tokens)


async def test_another_admin_is_changed_only_by_a_credential_acting_as_admin(client, container):
    admin = bearer(await make_admin(client, container))
    second, second_headers = await _second_admin(client, container)
    key = await _admin_key(
        client, admin, ["profile", "users:read", "users:write", "users:delete", "roles:manage"]
    )
    second_key = await _admin_key(client, second_headers, ["profile"])
    listed = await client.get(API_KEYS, headers=second_headers)
    second_key_id = listed.json()[0]["id"]
    attempts = [
        client.delete(f"{API_KEYS}/{second_key_id}", headers=key),
        client.post(f"/api/v1/users/{second}/block", headers=key),
        client.patch(f"/api/v1/users/{second}", headers=key, json={"email": "evil@example.com"}),
        client.delete(f"/api/v1/users/{second}", headers=key),
        client.post(f"/api/v1/users/{second}/erase", headers=key),
        client.delete(f"/api/v1/users/{second}/roles/admin", headers=key),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403, response.text
        assert response.json()["code"] in {"admin_target", "scope_not_allowed"}
    assert (await client.get("/api/v1/users/me", headers=second_headers)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=second_key)).status_code == 200
    # A plain user is within that key's reach; and the full admin may act on the other.
    bob = (await signup(client, "bob"))["user"]["id"]
    assert (await client.post(f"/api/v1/users/{bob}/block", headers=key)).status_code == 200
    blocked = await client.post(f"/api/v1/users/{second}/block", headers=admin)
    assert blocked.status_code == 200


async def test_jobs_manage_alone_reads_and_writes_no_users(client, container):
    admin = bearer(await make_admin(client, container))
    key = await _admin_key(client, admin, ["jobs:manage"])
    export = await client.post("/api/v1/jobs/users-exports", headers=key, json={})
    imported = await client.post(
        "/api/v1/jobs/users-imports",
        headers={**key, "Content-Type": "application/x-ndjson"},
        content=b'{"user_id": "x", "email": "x@example.com"}\n',
    )
    sync = await client.post("/api/v1/jobs/auth0-sync", headers=key, json={})
    assert [export.status_code, imported.status_code, sync.status_code] == [403, 403, 403]


async def test_exporting_password_hashes_needs_their_permission(client, container):
    admin = bearer(await make_admin(client, container))
    key = await _admin_key(client, admin, ["jobs:manage", "users:read"])
    body = {"fields": ["user_id", "password_hash"]}
    refused = await client.post("/api/v1/jobs/users-exports", headers=key, json=body)
    assert refused.status_code == 403
    assert "users:password_hashes" in refused.json()["detail"]
    plain = await client.post(
        "/api/v1/jobs/users-exports", headers=key, json={"fields": ["user_id"]}
    )
    assert plain.status_code == 202
    full = await client.post("/api/v1/jobs/users-exports", headers=admin, json=body)
    assert full.status_code == 202
    for accepted in (plain, full):
        assert (await wait_job(container, accepted.json()["id"])).status == "completed"


async def test_an_import_remembers_its_creators_permissions(client, container):
    admin = bearer(await make_admin(client, container))
    key = await _admin_key(client, admin, ["jobs:manage", "users:write"])
    response = await client.post(
        "/api/v1/jobs/users-imports",
        headers={**key, "Content-Type": "application/x-ndjson"},
        content=b'{"user_id": "auth0|1", "email": "one@example.com"}\n',
    )
    assert response.status_code == 202, response.text
    # Waited for, so the import's writes cannot land after this test's clean-up.
    job = await wait_job(container, response.json()["id"])
    assert job.params["creator_scopes"] == ["jobs:manage", "users:write"]
    assert job.status == "completed", job.error
