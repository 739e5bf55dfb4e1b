"""GET /users/me is served from a cache; every change must show at once in this process."""

from __future__ import annotations

from tests.helpers import bearer, make_admin, signin, signup


async def test_me_reflects_every_kind_of_change_immediately(client, container):
    admin = await make_admin(client, container)
    tokens = await signup(client, "ghanima")
    me = lambda: client.get("/api/v1/users/me", headers=bearer(tokens))  # noqa: E731
    first = (await me()).json()
    assert first["logins_count"] == 0 and first["roles"] == ["user"]

    await client.patch("/api/v1/users/me", headers=bearer(tokens), json={"family_name": "A"})
    assert (await me()).json()["family_name"] == "A"

    user_id = first["id"]
    await client.patch(
        f"/api/v1/users/{user_id}", headers=bearer(admin), json={"app_metadata": {"plan": "gold"}}
    )
    assert (await me()).json()["app_metadata"] == {"plan": "gold"}

    await signin(client, "ghanima")
    assert (await me()).json()["logins_count"] == 1

    role = await client.post(
        "/api/v1/roles",
        headers=bearer(admin),
        json={"name": "auditor", "permissions": ["audit:read"]},
    )
    assert role.status_code == 201
    await client.post(
        f"/api/v1/users/{user_id}/roles", headers=bearer(admin), json={"role": "auditor"}
    )
    # the role change revoked the old token; a fresh one sees the new role
    assert (await me()).status_code == 401
    tokens = await signin(client, "ghanima")
    assert sorted((await me()).json()["roles"]) == ["auditor", "user"]
