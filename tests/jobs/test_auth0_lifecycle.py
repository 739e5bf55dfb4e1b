"""An Auth0 sync changes accounts through the same lifecycle as the API: a user blocked at
the tenant loses every session here, an unblock revives none, and a password hash from the
tenant is written only for a sync created with `users:password_hashes`."""

from __future__ import annotations

import uuid
from typing import Any

from globeguard.identity.permissions import ALL_PERMISSIONS, Permission
from globeguard.jobs.repository import JobRepository
from tests.helpers import bearer, make_admin, signin, signup
from tests.jobs.fake_auth0 import CLIENT_ID, CLIENT_SECRET, Behaviour, FakeAuth0
from tests.jobs.test_auth0_sync import FakeTime, handler, run
from tests.jobs.test_auth0_sync import settings as settings  # the fake tenant's settings
from tests.jobs.test_import_lifecycle import (
    HASH_REASON,
    NEW_PASSWORD,
    assert_signed_out,
    bcrypt_of,
    event_types,
)

SYNC_WITHOUT_HASHES = sorted(ALL_PERMISSIONS - {Permission.USERS_PASSWORD_HASHES})


async def sync(
    client, container, fake: FakeAuth0, admin: dict[str, str], scopes: list[str] | None = None
) -> Any:
    """One sync of the fake tenant, created by `admin`; `scopes` overrides what its creator
    held."""
    body = {"domain": fake.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    response = await client.post("/api/v1/jobs/auth0-sync", json=body, headers=admin)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    if scopes is not None:
        async with container.db.transaction() as session:
            job = await JobRepository(session).get(uuid.UUID(job_id))
            assert job is not None
            job.params = {**job.params, "creator_scopes": scopes}
    job = await run(container, handler(container, FakeTime()), job_id)
    assert job.status == "completed", job.error
    return job


async def test_a_user_blocked_at_the_tenant_loses_every_session_here(client, container):
    admin = bearer(await make_admin(client, container))
    ann = await signup(client, "ann", email="ann@example.com")
    phone = await signin(client, "ann")
    record = {"user_id": "auth0|ann", "email": "ann@example.com", "blocked": True}
    with FakeAuth0(Behaviour(users=[record])) as fake:
        blocked = await sync(client, container, fake, admin)
        assert blocked.result["updated"] == 1, blocked.result
        await assert_signed_out(client, ann)
        await assert_signed_out(client, phone)

        fake.behaviour.users = [{**record, "blocked": False}]
        await sync(client, container, fake, admin)
    await assert_signed_out(client, ann)
    await assert_signed_out(client, phone)
    assert (await signin(client, "ann"))["username"] == "ann"
    types = await event_types(container, ann["user_id"])
    assert types.index("user.blocked") < types.index("user.unblocked")


async def test_a_tenant_hash_is_written_only_with_the_permission(client, container):
    admin = bearer(await make_admin(client, container))
    eve = await signup(client, "eve", email="eve@example.com")
    record = {
        "user_id": "auth0|eve",
        "email": "eve@example.com",
        "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": bcrypt_of(NEW_PASSWORD)}},
    }
    with FakeAuth0(Behaviour(users=[record])) as fake:
        refused = await sync(client, container, fake, admin, SYNC_WITHOUT_HASHES)
        assert [e["reason"] for e in refused.result["errors"]] == [HASH_REASON]
        assert (await signin(client, "eve"))["username"] == "eve"

        changed = await sync(client, container, fake, admin, sorted(ALL_PERMISSIONS))
    assert changed.result["updated"] == 1, changed.result
    await assert_signed_out(client, eve)
    assert (await signin(client, "eve", NEW_PASSWORD))["username"] == "eve"
    assert "user.password_changed" in await event_types(container, eve["user_id"])
