"""Exports and imports through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import uuid

import bcrypt
import orjson
from sqlalchemy import select

from globeguard.events.models import OutboxEvent
from globeguard.identity.models import User
from globeguard.identity.permissions import ALL_PERMISSIONS
from tests.conftest import wipe
from tests.helpers import bearer, make_admin, signin, signup
from tests.jobs.support import export_lines, import_file, ndjson, wait_job

ADMIN = "root"


async def _admin(client, container) -> dict[str, str]:
    return bearer(await make_admin(client, container, ADMIN))


async def _users(client) -> None:
    await signup(
        client, "ana", email="ana@example.com", given_name="Ana",
        user_metadata={"plan": "pro", "prefs": {"theme": "dark"}, "tags": ["a", "b"]},
    )  # fmt: skip
    await signup(client, "bob", user_metadata={"plan": "free"})
    await signup(client, "cyd", email="cy@example.com", family_name="=HYPERLINK(1)")
    await signin(client, "ana")


async def test_export_then_import_into_an_empty_instance_is_unchanged(client, container):
    admin = await _admin(client, container)
    await _users(client)
    fields = [
        "user_id", "username", "email", "email_verified", "given_name", "family_name", "status",
        "user_metadata", "app_metadata", "created_at", "updated_at", "last_login", "last_ip",
        "logins_count", "password_hash",
    ]  # fmt: skip
    before = await export_lines(client, container, admin, fields=fields)
    assert len(before) == 4  # the admin too
    # An empty instance: every table wiped, the built-in roles back, then the import.
    await wipe(container)
    async with container.db.transaction() as session:
        await container.roles.ensure_builtin(session)
    job = await _import_directly(container, b"".join(line + b"\n" for line in before))
    assert job.status == "completed", job.error
    assert job.result["inserted"] == 4 and job.result["failed"] == 0
    # Export again, through the service, and compare byte for byte.
    admin = await _admin_again(client, container)
    after = await export_lines(client, container, admin, fields=fields)

    # The admins signed in since (their login stats moved); everyone else is byte-identical.
    def users(lines):
        return sorted(x for x in lines if not orjson.loads(x)["username"].startswith("root"))

    assert len(users(before)) == 3
    assert users(after) == users(before)
    # Every imported user was announced.
    async with container.db.read() as session:
        types = (await session.scalars(select(OutboxEvent.type))).all()
    assert types.count("user.created") >= 4


async def _import_directly(container, content: bytes):
    path = container.jobs.files.root / f"incoming-{uuid.uuid4().hex}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    async with container.db.transaction() as session:
        job = await container.jobs.submit_import(
            session, path, upsert=False, actor="test", scopes=ALL_PERMISSIONS
        )
    return await wait_job(container, job.id)


async def _admin_again(client, container) -> dict[str, str]:
    """The admin was imported with its password hash, so it signs in as before, but roles
    are not part of an export: a second admin runs the second export."""
    await signin(client, ADMIN)
    return bearer(await make_admin(client, container, "root2"))


async def test_a_bad_record_in_the_middle_keeps_every_good_one(client, container):
    admin = await _admin(client, container)
    records = [
        {"user_id": "auth0|1", "email": "one@example.com"},
        {"user_id": "auth0|2", "email": "two@example.com"},
        {"user_id": "auth0|3", "email": "not-an-email"},
        {"user_id": "auth0|4", "email": "four@example.com"},
    ]
    content = ndjson(records[:2]) + b"{broken json\n" + ndjson(records[2:])
    job = await import_file(client, container, admin, content, filename="users.ndjson")
    assert job.status == "completed"
    assert job.result["inserted"] == 3
    assert job.result["failed"] == 2
    assert not list((container.jobs.files.root / "uploads").iterdir())  # the upload is gone
    reasons = {e["line"]: e["reason"] for e in job.result["errors"]}
    assert reasons[3].startswith("not JSON")
    assert reasons[4] == "email: not an email address"
    async with container.db.read() as session:
        emails = set((await session.scalars(select(User.email))).all())
    assert {"one@example.com", "two@example.com", "four@example.com"} <= emails


async def test_imported_bcrypt_hashes_sign_in_and_become_argon2id(client, container):
    admin = await _admin(client, container)
    hashed = bcrypt.hashpw(b"old-auth0-password-1", bcrypt.gensalt(rounds=4)).decode()
    records = [
        {
            "email": "migrated@example.com",
            "username": "migrated",
            "email_verified": True,
            "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": hashed}},
            "user_metadata": {"plan": "pro"},
            "app_metadata": {"roles": ["editor"]},
        },
        {"email": "plain@example.com", "username": "plain", "password_hash": hashed},
        {"email": "md5@example.com", "custom_password_hash": {"algorithm": "md5", "hash": {}}},
    ]
    job = await import_file(client, container, admin, orjson.dumps(records))
    assert job.result["inserted"] == 2
    assert job.result["errors"] == [
        {
            "index": 2,
            "reason": "custom_password_hash.algorithm: 'md5' is not supported (only bcrypt)",
        }
    ]
    tokens = await signin(client, "migrated", "old-auth0-password-1")
    assert tokens["access_token"]
    await signin(client, "plain@example.com", "old-auth0-password-1")
    async with container.db.read() as session:
        user = await session.scalar(select(User).where(User.username == "migrated"))
    assert user.password_hash.startswith("$argon2id$")
    assert user.user_metadata == {"plan": "pro"} and user.app_metadata == {"roles": ["editor"]}
    assert user.email_verified is True


async def test_existing_users_are_errors_unless_upsert(client, container):
    admin = await _admin(client, container)
    first = [{"user_id": "auth0|9", "email": "nine@example.com", "user_metadata": {"v": 1}}]
    assert (await import_file(client, container, admin, orjson.dumps(first))).result[
        "inserted"
    ] == 1
    second = [{"user_id": "auth0|9", "email": "nine@example.com", "user_metadata": {"v": 2}}]
    again = await import_file(client, container, admin, orjson.dumps(second))
    assert again.result["failed"] == 1 and "upsert" in again.result["errors"][0]["reason"]
    upserted = await import_file(client, container, admin, orjson.dumps(second), upsert=True)
    assert upserted.result["updated"] == 1
    async with container.db.read() as session:
        user = await session.scalar(select(User).where(User.email == "nine@example.com"))
    assert user.user_metadata == {"v": 2} and user.revision == 2


async def test_gzipped_import_of_a_json_array(client, container):
    admin = await _admin(client, container)
    records = [{"email": f"g{i}@example.com"} for i in range(2500)]
    job = await import_file(client, container, admin, gzip.compress(orjson.dumps(records)))
    assert job.result["inserted"] == 2500 and job.progress_done == 2500
    # Exported back over three keyset pages, each user exactly once.
    lines = await export_lines(client, container, admin, fields=["user_id", "email"])
    emails = [orjson.loads(line)["email"] for line in lines]
    assert len(emails) == len(set(emails)) == 2501


async def test_csv_export_flattens_metadata_and_defuses_formulas(client, container):
    admin = await _admin(client, container)
    await _users(client)
    lines = await export_lines(
        client, container, admin, format="csv",
        fields=["username", "family_name", "user_metadata"], q="username:ana OR username:cyd",
    )  # fmt: skip
    header = lines[0].decode()
    assert (
        header
        == "username,family_name,user_metadata.plan,user_metadata.prefs.theme,user_metadata.tags"
    )
    rows = sorted(line.decode() for line in lines[1:])
    assert rows[0] == 'ana,,pro,dark,"[""a"",""b""]"'
    assert rows[1] == "cyd,'=HYPERLINK(1),,,"


async def test_download_links_are_signed_and_expire(client, container):
    admin = await _admin(client, container)
    response = await client.post("/api/v1/jobs/users-exports", json={}, headers=admin)
    job = await wait_job(container, response.json()["id"])
    view = (await client.get(f"/api/v1/jobs/{job.id}", headers=admin)).json()
    link = view["location"].removeprefix("http://testserver")
    assert (await client.get(link)).status_code == 200
    tampered = link[:-1] + ("0" if link[-1] != "0" else "1")
    assert (await client.get(tampered)).status_code == 404
    expires = int(link.split("expires=")[1].split("&")[0])
    longer = link.replace(f"expires={expires}", f"expires={expires + 3600}")
    assert (await client.get(longer)).status_code == 404
    assert (await client.get(f"/api/v1/jobs/{job.id}/download?expires=1&sig=00")).status_code == 404


async def test_jobs_need_the_jobs_permission_and_bad_input_is_4xx(client, container):
    admin = await _admin(client, container)
    user = bearer(await signup(client, "plainuser"))
    assert (
        await client.post("/api/v1/jobs/users-exports", json={}, headers=user)
    ).status_code == 403
    bad_field = await client.post(
        "/api/v1/jobs/users-exports", json={"fields": ["nope"]}, headers=admin
    )
    assert bad_field.status_code == 422 and bad_field.json()["code"] == "invalid_fields"
    bad_query = await client.post("/api/v1/jobs/users-exports", json={"q": "a:("}, headers=admin)
    assert bad_query.status_code == 400 and bad_query.json()["code"] == "invalid_query"
    bad_type = await client.post(
        "/api/v1/jobs/users-imports", content=b"x", headers={**admin, "content-type": "text/csv"}
    )
    assert bad_type.status_code == 400
    missing = await client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404
    garbage = await import_file(client, container, admin, b"name,email\nx,y\n")
    assert garbage.status_code if False else garbage.status == "failed"
    assert "neither a JSON array" in garbage.error


async def test_a_pending_job_can_be_cancelled_once(client, container):
    admin = await _admin(client, container)
    async with container.db.transaction() as session:
        from globeguard.jobs.schemas import ExportRequest

        job = await container.jobs.submit_export(
            session, ExportRequest(), "test", scopes=ALL_PERMISSIONS
        )
    cancelled = await client.post(f"/api/v1/jobs/{job.id}/cancel", headers=admin)
    if cancelled.status_code == 200:
        assert cancelled.json()["status"] == "cancelled"
        again = await client.post(f"/api/v1/jobs/{job.id}/cancel", headers=admin)
        assert again.status_code == 409
    else:  # the embedded runner finished it first
        assert cancelled.status_code == 409


async def test_ndjson_fields_keep_types_and_dig_into_metadata(client, container):
    admin = await _admin(client, container)
    await _users(client)
    lines = await export_lines(
        client, container, admin, q="username:ana",
        fields=["user_id", "email_verified", "user_metadata.prefs.theme", "user_metadata.nope",
                "user_metadata.tags", "created_at", "last_login", "logins_count", "user_metadata"],
    )  # fmt: skip
    assert len(lines) == 1
    doc = orjson.loads(lines[0])
    assert list(doc) == [
        "user_id", "email_verified", "user_metadata.prefs.theme", "user_metadata.nope",
        "user_metadata.tags", "created_at", "last_login", "logins_count", "user_metadata",
    ]  # fmt: skip
    assert uuid.UUID(doc["user_id"]) and doc["email_verified"] is False
    assert doc["user_metadata.prefs.theme"] == "dark" and doc["user_metadata.nope"] is None
    assert doc["user_metadata.tags"] == ["a", "b"]
    assert doc["user_metadata"] == {"plan": "pro", "prefs": {"theme": "dark"}, "tags": ["a", "b"]}
    assert doc["created_at"].endswith("Z") and doc["last_login"].endswith("Z")
    assert doc["logins_count"] == 1
    async with container.db.read() as session:
        user = await session.scalar(select(User).where(User.username == "ana"))
    assert str(user.id) == doc["user_id"]
    from datetime import datetime

    assert datetime.fromisoformat(doc["created_at"]) == user.created_at
    assert datetime.fromisoformat(doc["last_login"]) == user.last_login_at
