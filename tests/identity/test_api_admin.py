"""Administration over HTTP: permission checks, block/unblock, soft delete/restore, erase,
roles, and user search with cursor pagination."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import STRONG, bearer, make_admin, signin, signup

ME = "/api/v1/users/me"
USERS = "/api/v1/users"


async def signin_response(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await client.post("/api/v1/auth/signin", json={"username": username, "password": STRONG})


# --- who may administer ----------------------------------------------------------------------


async def test_non_admin_is_forbidden_from_admin_routes(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "ordinary")
    requests = [
        ("GET", USERS, None),
        ("GET", "/api/v1/roles", None),
        ("GET", "/api/v1/roles/permissions", None),
        ("GET", "/api/v1/clients", None),
        ("POST", "/api/v1/clients", {"name": "x", "scopes": []}),
        ("GET", "/api/v1/audit", None),
        ("POST", f"{USERS}/{admin['user_id']}/block", None),
        ("POST", f"{USERS}/{user['user_id']}/block", None),
        ("POST", f"{USERS}/{admin['user_id']}/erase", None),
        ("POST", f"{USERS}/{user['user_id']}/roles", {"role": "admin"}),
        ("GET", f"{USERS}/{admin['user_id']}", None),
        ("DELETE", f"{USERS}/{admin['user_id']}", None),
    ]
    for method, url, body in requests:
        response = await client.request(method, url, headers=bearer(user), json=body)
        assert response.status_code == 403, (method, url, response.text)
        assert response.json()["code"] == "forbidden"
    # ... and nothing happened
    me = await client.get(ME, headers=bearer(user))
    assert me.status_code == 200 and me.json()["roles"] == ["user"]
    assert (await client.get(ME, headers=bearer(admin))).status_code == 200


async def test_unauthenticated_admin_routes_are_401(client):
    for url in (USERS, "/api/v1/roles", "/api/v1/clients", "/api/v1/audit"):
        response = await client.get(url)
        assert response.status_code == 401, url
        assert response.json()["code"] == "not_authenticated"


# --- block / unblock -------------------------------------------------------------------------


async def test_block_and_unblock(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "rebel")
    assert (await client.get(ME, headers=bearer(user))).status_code == 200

    blocked = await client.post(f"{USERS}/{user['user_id']}/block", headers=bearer(admin))
    assert blocked.status_code == 200
    assert blocked.json()["status"] == "blocked"
    live = await client.get(ME, headers=bearer(user))
    assert live.status_code == 401 and live.json()["code"] == "invalid_token"
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user["refresh_token"]}
    )
    assert refreshed.status_code == 400
    denied = await signin_response(client, "rebel")
    assert denied.status_code == 403 and denied.json()["code"] == "account_blocked"
    twice = await client.post(f"{USERS}/{user['user_id']}/block", headers=bearer(admin))
    assert twice.status_code == 409

    unblocked = await client.post(f"{USERS}/{user['user_id']}/unblock", headers=bearer(admin))
    assert unblocked.status_code == 200 and unblocked.json()["status"] == "active"
    fresh = await signin(client, "rebel")
    assert (await client.get(ME, headers=bearer(fresh))).status_code == 200
    # unblocking does not revive tokens cut by the block
    assert (await client.get(ME, headers=bearer(user))).status_code == 401


# --- soft delete / restore / erase -----------------------------------------------------------


async def test_soft_delete_and_restore(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "lazarus")
    created = await client.post("/api/v1/api-keys", headers=bearer(user), json={"name": "ci"})
    assert created.status_code == 201
    key = created.json()
    assert (await client.get(ME, headers={"X-API-KEY": key["api_key"]})).status_code == 200

    deleted = await client.delete(f"{USERS}/{user['user_id']}", headers=bearer(admin))
    assert deleted.status_code == 204
    assert (await signin_response(client, "lazarus")).status_code == 401
    assert (await client.get(ME, headers=bearer(user))).status_code == 401
    gone = await client.get(ME, headers={"X-API-KEY": key["api_key"]})
    assert gone.status_code == 401 and gone.json()["code"] == "invalid_api_key"
    admin_view = await client.get(f"{USERS}/{user['user_id']}", headers=bearer(admin))
    assert admin_view.status_code == 200 and admin_view.json()["status"] == "deleted"

    restored = await client.post(f"{USERS}/{user['user_id']}/restore", headers=bearer(admin))
    assert restored.status_code == 200
    assert restored.json()["status"] == "active"
    again = await client.post(f"{USERS}/{user['user_id']}/restore", headers=bearer(admin))
    assert again.status_code == 409

    fresh = await signin(client, "lazarus")
    assert (await client.get(ME, headers=bearer(fresh))).status_code == 200
    # API keys revoked by the deletion stay revoked
    still_gone = await client.get(ME, headers={"X-API-KEY": key["api_key"]})
    assert still_gone.status_code == 401 and still_gone.json()["code"] == "invalid_api_key"
    listed = (await client.get("/api/v1/api-keys", headers=bearer(fresh))).json()
    assert [k["id"] for k in listed] == [key["id"]]
    assert listed[0]["revoked_at"] is not None


async def test_soft_deleted_username_cannot_be_registered_again(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "Phoenix", email="phoenix@example.com")
    deleted = await client.delete(f"{USERS}/{user['user_id']}", headers=bearer(admin))
    assert deleted.status_code == 204
    for username in ("Phoenix", "phoenix", "PHOENIX"):
        again = await client.post(
            "/api/v1/auth/signup", json={"username": username, "password": STRONG}
        )
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "username_taken"
    email = await client.post(
        "/api/v1/auth/signup",
        json={"username": "newphoenix", "password": STRONG, "email": "Phoenix@Example.com"},
    )
    assert email.status_code == 409 and email.json()["code"] == "email_taken"


async def test_erase_frees_the_username(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "forgetme", email="forget@example.com")
    erased = await client.post(f"{USERS}/{user['user_id']}/erase", headers=bearer(admin))
    assert erased.status_code == 204

    missing = await client.get(f"{USERS}/{user['user_id']}", headers=bearer(admin))
    assert missing.status_code == 404
    assert missing.json()["code"] == "user_not_found"
    assert (await client.get(ME, headers=bearer(user))).status_code == 401
    assert (await signin_response(client, "forgetme")).status_code == 401
    listed = await client.get(USERS, headers=bearer(admin), params={"include_deleted": "true"})
    assert user["user_id"] not in {u["id"] for u in listed.json()["items"]}

    reborn = await client.post(
        "/api/v1/auth/signup",
        json={"username": "forgetme", "password": STRONG, "email": "forget@example.com"},
    )
    assert reborn.status_code == 201, reborn.text
    assert reborn.json()["user_id"] != user["user_id"]
    twice = await client.post(f"{USERS}/{user['user_id']}/erase", headers=bearer(admin))
    assert twice.status_code == 404


async def test_erase_a_soft_deleted_user(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "twostep")
    deleted = await client.delete(f"{USERS}/{user['user_id']}", headers=bearer(admin))
    assert deleted.status_code == 204
    assert (
        await client.post(f"{USERS}/{user['user_id']}/erase", headers=bearer(admin))
    ).status_code == 204
    assert (
        await client.post("/api/v1/auth/signup", json={"username": "twostep", "password": STRONG})
    ).status_code == 201


# --- roles -----------------------------------------------------------------------------------


async def role_ids(client: httpx.AsyncClient, admin: dict[str, Any]) -> dict[str, str]:
    response = await client.get("/api/v1/roles", headers=bearer(admin))
    assert response.status_code == 200
    return {r["name"]: r["id"] for r in response.json()}


async def test_custom_role_grants_permissions_and_revokes_old_tokens(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "reader")
    assert (await client.get(USERS, headers=bearer(user))).status_code == 403

    created = await client.post(
        "/api/v1/roles",
        headers=bearer(admin),
        json={"name": "auditor", "description": "reads users", "permissions": ["users:read"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["permissions"] == ["users:read"]
    assert created.json()["builtin"] is False
    duplicate = await client.post(
        "/api/v1/roles", headers=bearer(admin), json={"name": "Auditor", "permissions": []}
    )
    assert duplicate.status_code == 409

    unknown = await client.post(
        "/api/v1/roles",
        headers=bearer(admin),
        json={"name": "wizard", "permissions": ["users:read", "castle:storm"]},
    )
    assert unknown.status_code == 422
    assert "wizard" not in await role_ids(client, admin)

    assigned = await client.post(
        f"{USERS}/{user['user_id']}/roles", headers=bearer(admin), json={"role": "auditor"}
    )
    assert assigned.status_code == 200, assigned.text
    assert sorted(assigned.json()["roles"]) == ["auditor", "user"]

    old = await client.get(ME, headers=bearer(user))
    assert old.status_code == 401 and old.json()["code"] == "invalid_token"
    fresh = await signin(client, "reader")
    assert "users:read" in fresh["scope"].split()
    assert (await client.get(USERS, headers=bearer(fresh))).status_code == 200
    assert (
        await client.post(f"{USERS}/{admin['user_id']}/block", headers=bearer(fresh))
    ).status_code == 403

    # changing the role's permissions cuts its members' tokens too
    role_id = created.json()["id"]
    changed = await client.patch(
        f"/api/v1/roles/{role_id}", headers=bearer(admin), json={"permissions": ["audit:read"]}
    )
    assert changed.status_code == 200
    assert (await client.get(ME, headers=bearer(fresh))).status_code == 401
    newer = await signin(client, "reader")
    assert (await client.get(USERS, headers=bearer(newer))).status_code == 403
    assert (await client.get("/api/v1/audit", headers=bearer(newer))).status_code == 200

    # deleting it as well
    assert (
        await client.delete(f"/api/v1/roles/{role_id}", headers=bearer(admin))
    ).status_code == 204
    assert (await client.get(ME, headers=bearer(newer))).status_code == 401
    me = (await client.get(ME, headers=bearer(await signin(client, "reader")))).json()
    assert me["roles"] == ["user"]


async def test_assigning_an_unknown_role_is_404(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "nobodyrole")
    response = await client.post(
        f"{USERS}/{user['user_id']}/roles", headers=bearer(admin), json={"role": "ghost"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "role_not_found"
    assert (await client.get(ME, headers=bearer(user))).status_code == 200


async def test_builtin_roles_are_protected(client, container):
    admin = await make_admin(client, container)
    ids = await role_ids(client, admin)
    assert {"admin", "user"} <= ids.keys()
    for name in ("admin", "user"):
        deleted = await client.delete(f"/api/v1/roles/{ids[name]}", headers=bearer(admin))
        assert deleted.status_code == 409, name
        assert deleted.json()["code"] == "role_builtin"
        changed = await client.patch(
            f"/api/v1/roles/{ids[name]}", headers=bearer(admin), json={"permissions": []}
        )
        assert changed.status_code == 409
        assert changed.json()["code"] == "role_builtin"
    assert set(ids) <= set(await role_ids(client, admin))
    assert (await client.get(USERS, headers=bearer(admin))).status_code == 200


async def test_last_admin_keeps_the_admin_role(client, container):
    admin = await make_admin(client, container)
    response = await client.delete(f"{USERS}/{admin['user_id']}/roles/admin", headers=bearer(admin))
    assert response.status_code == 409
    assert response.json()["code"] == "last_admin"
    assert (await client.get(USERS, headers=bearer(admin))).status_code == 200

    # with a second admin, the first one may step down
    deputy = await signup(client, "deputy")
    promoted = await client.post(
        f"{USERS}/{deputy['user_id']}/roles", headers=bearer(admin), json={"role": "admin"}
    )
    assert promoted.status_code == 200
    stepped_down = await client.delete(
        f"{USERS}/{admin['user_id']}/roles/admin", headers=bearer(admin)
    )
    assert stepped_down.status_code == 200
    assert stepped_down.json()["roles"] == ["user"]
    deputy_token = await signin(client, "deputy")
    last = await client.delete(
        f"{USERS}/{deputy['user_id']}/roles/admin", headers=bearer(deputy_token)
    )
    assert last.status_code == 409 and last.json()["code"] == "last_admin"


# --- search ----------------------------------------------------------------------------------

SEARCH_USERS = {
    "srch_alice": {"subscription_tier": "free", "logins": 3},
    "srch_bob": {"subscription_tier": "pro"},
    "srch_carol": {"subscription_tier": "free"},
    "srch_dave": {"subscription_tier": "enterprise"},
    "srch_erin": {},
}


@pytest.fixture
async def populated(client, container) -> dict[str, Any]:
    admin = await make_admin(client, container)
    ids = {"root": admin["user_id"]}
    for name, metadata in SEARCH_USERS.items():
        ids[name] = (await signup(client, name, user_metadata=metadata))["user_id"]
    return {"admin": admin, "ids": ids}


async def search(client: httpx.AsyncClient, admin: dict[str, Any], q: str, **params: Any) -> set:
    response = await client.get(USERS, headers=bearer(admin), params={"q": q, **params})
    assert response.status_code == 200, (q, response.text)
    assert response.json()["next_cursor"] is None
    return {u["username"] for u in response.json()["items"]}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("user_metadata.subscription_tier:free", {"srch_alice", "srch_carol"}),
        ('user_metadata.subscription_tier:"free"', {"srch_alice", "srch_carol"}),
        ("user_metadata.subscription_tier:free AND username:srch_a*", {"srch_alice"}),
        ("user_metadata.subscription_tier:free user_metadata.logins:3", {"srch_alice"}),
        (
            "user_metadata.subscription_tier:free OR user_metadata.subscription_tier:pro",
            {"srch_alice", "srch_bob", "srch_carol"},
        ),
        (
            "username:srch* AND NOT user_metadata.subscription_tier:free",
            {"srch_bob", "srch_dave", "srch_erin"},
        ),
        (
            "username:srch* -user_metadata.subscription_tier:free",
            {"srch_bob", "srch_dave", "srch_erin"},
        ),
        (
            "(user_metadata.subscription_tier:free OR user_metadata.subscription_tier:pro) "
            "AND NOT username:srch_bob",
            {"srch_alice", "srch_carol"},
        ),
        ("username:srch_*", set(SEARCH_USERS)),
        ("username:SRCH_C*", {"srch_carol"}),
        ("user_metadata.subscription_tier:ent*", {"srch_dave"}),
        (
            "_exists_:user_metadata.subscription_tier",
            {"srch_alice", "srch_bob", "srch_carol", "srch_dave"},
        ),
        ("username:srch* AND NOT _exists_:user_metadata.subscription_tier", {"srch_erin"}),
        ("role:admin", {"root"}),
        ("user_metadata.subscription_tier:platinum", set()),
        ('username:"x\' OR 1=1 --"', set()),
    ],
)
async def test_search_queries(client, populated, q, expected):
    assert await search(client, populated["admin"], q) == expected


async def test_search_needs_users_read(client, populated):
    user = await signin(client, "srch_alice")
    response = await client.get(USERS, headers=bearer(user), params={"q": "username:srch*"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "q",
    [
        "username:srch* AND (",
        'user_metadata.subscription_tier:"unterminated',
        "AND username:x",
        "username:",
        "logins_count:[1 TO",
    ],
)
async def test_malformed_query_is_400_with_position(client, populated, q):
    response = await client.get(USERS, headers=bearer(populated["admin"]), params={"q": q})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "invalid_query"
    assert isinstance(problem["position"], int)
    assert 0 <= problem["position"] <= len(q)


@pytest.mark.parametrize("q", ["shoe_size:42", "password_hash:x*", "_exists_:secret_column"])
async def test_unknown_field_is_400(client, populated, q):
    response = await client.get(USERS, headers=bearer(populated["admin"]), params={"q": q})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_query"
    assert "position" in response.json()


async def walk(client: httpx.AsyncClient, admin: dict[str, Any], **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(USERS, headers=bearer(admin), params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([u["id"] for u in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


async def test_cursor_pagination_walks_every_user_once(client, populated):
    admin = populated["admin"]
    everyone = set(populated["ids"].values())
    pages = await walk(client, admin)
    flat = [uid for page in pages for uid in page]
    assert len(flat) == len(set(flat)), "a user appeared on two pages"
    assert set(flat) == everyone, "a user was skipped"
    assert all(len(page) == 2 for page in pages[:-1])
    assert len(pages) == 3
    # creation order
    assert flat[0] == populated["ids"]["root"]
    assert flat[1:] == [populated["ids"][name] for name in SEARCH_USERS]

    filtered = await walk(client, admin, q="username:srch*")
    flat = [uid for page in filtered for uid in page]
    assert flat == [populated["ids"][name] for name in SEARCH_USERS]

    # a user created while paging shows up on the last page, nothing repeats
    first = await client.get(USERS, headers=bearer(admin), params={"limit": 2})
    newcomer = await signup(client, "srch_late")
    rest = await walk(client, admin, cursor=first.json()["next_cursor"])
    later = [uid for page in rest for uid in page]
    assert later[-1] == newcomer["user_id"]
    assert not set(later) & {u["id"] for u in first.json()["items"]}


async def test_bad_cursor_is_400(client, populated):
    for cursor in ("garbage!", "Zm9v", "a" * 100):
        response = await client.get(
            USERS, headers=bearer(populated["admin"]), params={"cursor": cursor}
        )
        assert response.status_code == 400, (cursor, response.text)
        assert response.json()["code"] == "invalid_cursor"


async def test_deleted_users_are_hidden_unless_asked_for(client, populated):
    admin = populated["admin"]
    erin = populated["ids"]["srch_erin"]
    assert (await client.delete(f"{USERS}/{erin}", headers=bearer(admin))).status_code == 204

    visible = await client.get(USERS, headers=bearer(admin))
    assert erin not in {u["id"] for u in visible.json()["items"]}
    assert len(visible.json()["items"]) == len(populated["ids"]) - 1
    assert "srch_erin" not in await search(client, admin, "username:srch*")

    everyone = await client.get(USERS, headers=bearer(admin), params={"include_deleted": "true"})
    assert erin in {u["id"] for u in everyone.json()["items"]}
    assert await search(client, admin, "status:deleted") == {"srch_erin"}
    assert "srch_erin" in await search(client, admin, "username:srch*", include_deleted="true")


async def test_deleted_users_stay_hidden_when_a_metadata_key_mentions_status(client, populated):
    """Only the `status` field lets a query see deleted users; a metadata key whose name merely
    contains "status" must not."""
    admin = populated["admin"]
    ghost = await signup(client, "srch_ghost", user_metadata={"account_status": "gold"})
    live = await signup(client, "srch_live", user_metadata={"account_status": "gold"})
    assert (
        await client.delete(f"{USERS}/{ghost['user_id']}", headers=bearer(admin))
    ).status_code == 204
    assert live["user_id"]
    assert await search(client, admin, "user_metadata.account_status:gold") == {"srch_live"}
