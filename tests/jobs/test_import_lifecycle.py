"""An import changes accounts the way the API does: a new password or a block ends every
session and refresh token, the specific event is recorded, and a later unblock brings no old
session back. What an import may write is bounded by the permissions of whoever created it."""

from __future__ import annotations

import uuid
from typing import Any

import bcrypt
import orjson
from sqlalchemy import select

from globeguard.events.models import OutboxEvent
from globeguard.identity.permissions import ALL_PERMISSIONS, Permission
from tests.helpers import STRONG, bearer, make_admin, signin, signup
from tests.jobs.support import ndjson, wait_job

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
NEW_PASSWORD = "imported-new-passphrase-41"
HASH_REASON = "writing password hashes needs the 'users:password_hashes' permission"
EVERYTHING = sorted(ALL_PERMISSIONS)
# An operator trusted with users and jobs, but neither with hashes nor with admins.
OPERATOR = sorted(
    {Permission.JOBS_MANAGE, Permission.USERS_READ, Permission.USERS_WRITE, Permission.USERS_DELETE}
)


def bcrypt_of(password: str) -> str:
    # Cost 4: the lowest bcrypt allows; what is tested is the path, not the hash's strength.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


async def run_import(
    container, records: list[dict[str, Any]], *, scopes: list[str] | None, upsert: bool = True
) -> Any:
    """An import job as its creator would leave it: `scopes` None is a job from before
    creators' permissions were recorded."""
    path = container.jobs.files.root / f"incoming-{uuid.uuid4().hex}.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ndjson(records))
    async with container.db.transaction() as session:
        job = await container.jobs.submit_import(
            session, path, upsert=upsert, actor="test", scopes=scopes or []
        )
        params = {k: v for k, v in job.params.items() if k != "creator_scopes"}
        if scopes is not None:
            params["creator_scopes"] = scopes
        job.params = params
    done = await wait_job(container, job.id)
    assert done.status == "completed", done.error
    return done


async def event_types(container, user_id: str) -> list[str]:
    async with container.db.read() as session:
        query = (
            select(OutboxEvent.type)
            .where(OutboxEvent.user_id == uuid.UUID(user_id))
            .order_by(OutboxEvent.seq)
        )
        return list((await session.scalars(query)).all())


async def assert_signed_out(client, tokens: dict[str, Any]) -> None:
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 401
    refreshed = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code in (400, 401), refreshed.text
    assert "access_token" not in refreshed.json()


async def test_a_new_password_by_import_ends_every_session(client, container):
    ana = await signup(client, "ana")
    laptop = await signin(client, "ana")
    job = await run_import(
        container,
        [{"user_id": ana["user_id"], "password_hash": bcrypt_of(NEW_PASSWORD)}],
        scopes=EVERYTHING,
    )
    assert job.result["updated"] == 1, job.result
    await assert_signed_out(client, ana)
    await assert_signed_out(client, laptop)
    assert (await signin(client, "ana", NEW_PASSWORD))["username"] == "ana"
    assert "user.password_changed" in await event_types(container, ana["user_id"])


async def test_a_block_by_import_ends_sessions_and_an_unblock_revives_none(client, container):
    bob = await signup(client, "bob")
    blocked = await run_import(
        container, [{"user_id": bob["user_id"], "blocked": True}], scopes=OPERATOR
    )
    assert blocked.result["updated"] == 1, blocked.result
    await assert_signed_out(client, bob)
    refused = await client.post("/api/v1/auth/signin", json={"username": "bob", "password": STRONG})
    assert refused.status_code in (401, 403)

    await run_import(container, [{"user_id": bob["user_id"], "blocked": False}], scopes=OPERATOR)
    await assert_signed_out(client, bob)  # the sessions ended for good, not for a while
    assert (await signin(client, "bob"))["username"] == "bob"
    types = await event_types(container, bob["user_id"])
    assert types.index("user.blocked") < types.index("user.unblocked")


async def test_an_import_that_changes_neither_password_nor_status_keeps_sessions(client, container):
    cyd = await signup(client, "cyd")
    await run_import(container, [{"user_id": cyd["user_id"], "given_name": "Cy"}], scopes=OPERATOR)
    await run_import(container, [{"user_id": cyd["user_id"], "blocked": False}], scopes=OPERATOR)
    assert (await client.get(ME, headers=bearer(cyd))).json()["given_name"] == "Cy"
    types = await event_types(container, cyd["user_id"])
    assert "user.updated" in types
    assert not {"user.blocked", "user.unblocked", "user.password_changed"} & set(types)


async def test_a_hash_needs_the_password_hashes_permission(client, container):
    dee = await signup(client, "dee")
    records = [
        {"user_id": dee["user_id"], "password_hash": bcrypt_of(NEW_PASSWORD)},
        {"email": "new@example.com", "password_hash": bcrypt_of(NEW_PASSWORD)},
        {"email": "plain@example.com"},
    ]
    for scopes in (OPERATOR, None):  # None: a job created before scopes were recorded
        job = await run_import(container, records, scopes=scopes)
        assert [e["reason"] for e in job.result["errors"]] == [HASH_REASON, HASH_REASON]
        assert [e["line"] for e in job.result["errors"]] == [1, 2]
    assert (await client.get(ME, headers=bearer(dee))).status_code == 200
    assert (await signin(client, "dee"))["username"] == "dee"
    wrong = await client.post(
        "/api/v1/auth/signin", json={"username": "dee", "password": NEW_PASSWORD}
    )
    assert wrong.status_code == 401


async def test_an_admin_is_changed_only_by_a_creator_acting_as_admin(client, container):
    root = await make_admin(client, container)
    admin_id = root["user_id"]
    near_everything = sorted(ALL_PERMISSIONS - {Permission.CLIENTS_MANAGE})
    records = [
        {"user_id": admin_id, "given_name": "Mallory"},
        {"username": "root", "email": "other@example.com", "given_name": "Mallory"},
        {"user_id": "auth0|x1", "email": "plain@example.com"},
    ]
    job = await run_import(container, records, scopes=near_everything)
    assert job.result["inserted"] == 1, job.result
    reasons = {e["line"]: e["reason"] for e in job.result["errors"]}
    assert set(reasons) == {1, 2}
    assert all("admin" in reason for reason in reasons.values())
    me = await client.get(ME, headers=bearer(root))
    assert me.status_code == 200 and me.json()["given_name"] is None

    job = await run_import(container, records[:1], scopes=EVERYTHING)
    assert job.result["updated"] == 1, job.result
    assert (await client.get(ME, headers=bearer(root))).json()["given_name"] == "Mallory"


async def submit_as_key(client, api_key: str, content: bytes) -> Any:
    return await client.post(
        "/api/v1/jobs/users-imports",
        files={"users": ("users.json", content, "application/octet-stream")},
        data={"upsert": "true"},
        headers={"X-API-KEY": api_key},
    )


async def test_jobs_manage_cannot_take_over_the_admin(client, container):
    """The reported attack, over HTTP only: a key without admin authority imports the
    admin's user_id with a hash of the attacker's password. With `jobs:manage` alone the
    import is refused at the door or the record is; with `users:write` too, the job runs and
    that record is rejected. Either way the admin's password stays the admin's."""
    root = await make_admin(client, container)
    content = orjson.dumps([{"user_id": root["user_id"], "password_hash": bcrypt_of("pwned-123")}])
    for scopes in ([Permission.JOBS_MANAGE], [Permission.JOBS_MANAGE, Permission.USERS_WRITE]):
        created = await client.post(
            "/api/v1/api-keys",
            headers=bearer(root),
            json={"name": "jobs", "scopes": [s.value for s in scopes]},
        )
        assert created.status_code == 201, created.text
        response = await submit_as_key(client, created.json()["api_key"], content)
        if len(scopes) == 1 and response.status_code == 403:
            continue
        assert response.status_code == 202, response.text
        job = await wait_job(container, response.json()["id"])
        assert job.result["updated"] == 0 and job.result["failed"] == 1, job.result
        takeover = await client.post(
            "/api/v1/auth/signin", json={"username": "root", "password": "pwned-123"}
        )
        assert takeover.status_code == 401
    assert (await client.get(ME, headers=bearer(root))).status_code == 200
    assert (await signin(client, "root"))["username"] == "root"
