"""An administrator reads a user's second-factor status and removes the factor of a user who
lost their device: users:read to read, users:write to remove, and another admin's account only
with a credential acting as admin. Nothing secret is ever shown."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from globeguard.events.models import OutboxEvent
from tests.account.mfa.support import MFA, TOTP, code_at, enrolled_user, start, stored
from tests.helpers import bearer, make_admin, signin, signup

USERS = "/api/v1/users"
OFF = {
    "totp": {"enrolled": False, "pending": False, "confirmed_at": None},
    "recovery_codes_left": 0,
}


def mfa_of(user_id: object) -> str:
    return f"{USERS}/{user_id}/mfa"


async def key_with(client, admin: dict, scopes: list[str]) -> dict[str, str]:
    created = await client.post(
        "/api/v1/api-keys", headers=bearer(admin), json={"name": "ops", "scopes": scopes}
    )
    assert created.status_code == 201, created.text
    return {"X-API-KEY": created.json()["api_key"]}


async def removals(container, user_id: uuid.UUID) -> list[tuple[str, dict]]:
    async with container.db.read() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.user_id == user_id, OutboxEvent.type == "user.mfa.removed")
            .order_by(OutboxEvent.seq)
        )
        return [(row.actor, row.payload) for row in rows]


async def test_status_is_read_without_secrets(client, container, clock):
    admin = await make_admin(client, container)
    plain = await signup(client, "plainann")
    assert (await client.get(mfa_of(plain["user_id"]), headers=bearer(admin))).json() == OFF

    headers, secret, codes = await enrolled_user(client, clock, "ownerbea")
    bea = (await client.get("/api/v1/users/me", headers=headers)).json()["id"]
    read = await client.get(mfa_of(bea), headers=bearer(admin))

    assert read.status_code == 200
    body = read.json()
    assert body["totp"]["enrolled"] is True and body["totp"]["pending"] is False
    assert body["totp"]["confirmed_at"] is not None and body["recovery_codes_left"] == 10
    assert secret not in read.text and not any(code in read.text for code in codes)


async def test_a_pending_enrolment_reads_pending(client, container, clock):
    admin = await make_admin(client, container)
    cat = await signup(client, "pendingcat")
    await start(client, bearer(cat))

    body = (await client.get(mfa_of(cat["user_id"]), headers=bearer(admin))).json()

    assert body["totp"] == {"enrolled": False, "pending": True, "confirmed_at": None}


async def test_an_admin_removes_a_users_factor_and_codes(client, container, clock):
    admin = await make_admin(client, container)
    headers, secret, codes = await enrolled_user(client, clock, "lostphone")
    user_id = uuid.UUID((await client.get("/api/v1/users/me", headers=headers)).json()["id"])

    removed = await client.delete(mfa_of(user_id), headers=bearer(admin))

    assert removed.status_code == 204, removed.text
    assert await stored(container, user_id) == (None, [])
    assert (await client.get(mfa_of(user_id), headers=bearer(admin))).json() == OFF
    assert (await client.get(MFA, headers=headers)).json() == OFF
    assert await removals(container, user_id) == [
        (
            f"user:{admin['user_id']}",
            {"user_id": str(user_id), "factor": "totp", "was_confirmed": True, "proof": "admin"},
        )
    ]
    # The lost device's codes and the recovery codes prove nothing any more; the user can
    # enrol a new device.
    clock.advance(30)
    for code in (code_at(secret, clock.now), codes[1]):
        proof = await client.request("DELETE", TOTP, headers=headers, json={"code": code})
        assert proof.status_code == 400 and proof.json()["code"] == "invalid_mfa_code"
    assert (await client.post(TOTP, headers=headers)).status_code == 201
    # A second reset finds nothing confirmed, but removes the pending enrolment just started.
    again = await client.delete(mfa_of(user_id), headers=bearer(admin))
    assert again.status_code == 204
    last = await client.delete(mfa_of(user_id), headers=bearer(admin))
    assert last.status_code == 404 and last.json()["code"] == "mfa_not_enrolled"


async def test_users_read_only_may_look_but_not_remove(client, container, clock):
    admin = await make_admin(client, container)
    headers, _, _ = await enrolled_user(client, clock, "keptfactor")
    user_id = uuid.UUID((await client.get("/api/v1/users/me", headers=headers)).json()["id"])
    reader = await key_with(client, admin, ["users:read"])

    looked = await client.get(mfa_of(user_id), headers=reader)
    refused = await client.delete(mfa_of(user_id), headers=reader)

    assert looked.status_code == 200 and looked.json()["totp"]["enrolled"] is True
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    factor, codes = await stored(container, user_id)
    assert factor is not None and len(codes) == 10
    assert await removals(container, user_id) == []


async def test_other_users_and_strangers_may_neither_look_nor_remove(client, container, clock):
    await make_admin(client, container)
    headers, _, _ = await enrolled_user(client, clock, "victimvic")
    user_id = (await client.get("/api/v1/users/me", headers=headers)).json()["id"]
    mallory = bearer(await signup(client, "mallory"))

    for method in ("GET", "DELETE"):
        as_user = await client.request(method, mfa_of(user_id), headers=mallory)
        anonymous = await client.request(method, mfa_of(user_id))
        assert as_user.status_code == 403, (method, as_user.text)
        assert anonymous.status_code == 401, method
    factor, _ = await stored(container, uuid.UUID(user_id))
    assert factor is not None


async def test_another_admins_factor_needs_a_credential_acting_as_admin(client, container, clock):
    admin = await make_admin(client, container)
    other_headers, _, _ = await enrolled_user(client, clock, "secondadmin")
    other_id = (await client.get("/api/v1/users/me", headers=other_headers)).json()["id"]
    given = await client.post(
        f"{USERS}/{other_id}/roles", headers=bearer(admin), json={"role": "admin"}
    )
    assert given.status_code == 200, given.text
    role = await client.post(
        "/api/v1/roles",
        headers=bearer(admin),
        json={"name": "operator", "permissions": ["users:read", "users:write"]},
    )
    assert role.status_code == 201, role.text
    operator = await signup(client, "operator1")
    await client.post(
        f"{USERS}/{operator['user_id']}/roles", headers=bearer(admin), json={"role": "operator"}
    )
    operator = bearer(await signin(client, "operator1"))
    writer_key = await key_with(client, admin, ["users:read", "users:write"])
    plain_headers, _, _ = await enrolled_user(client, clock, "plainpat")
    plain_id = (await client.get("/api/v1/users/me", headers=plain_headers)).json()["id"]

    for partial in (operator, writer_key):
        refused = await client.delete(mfa_of(other_id), headers=partial)
        assert refused.status_code == 403 and refused.json()["code"] == "admin_target"
    assert (await stored(container, uuid.UUID(other_id)))[0] is not None
    # The same operator may reset a plain user's factor; a full admin may reset the admin's.
    assert (await client.delete(mfa_of(plain_id), headers=operator)).status_code == 204
    assert (await client.delete(mfa_of(other_id), headers=bearer(admin))).status_code == 204
    assert await stored(container, uuid.UUID(other_id)) == (None, [])


async def test_an_admins_own_factor_is_removed_with_a_proof_not_here(client, container, clock):
    admin = await make_admin(client, container)
    await client.post(MFA + "/totp", headers=bearer(admin))

    refused = await client.delete(mfa_of(admin["user_id"]), headers=bearer(admin))

    assert refused.status_code == 403 and refused.json()["code"] == "own_mfa"
    body = (await client.get(mfa_of(admin["user_id"]), headers=bearer(admin))).json()
    assert body["totp"]["pending"] is True


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_unknown_deleted_and_malformed_users(client, container, method):
    admin = bearer(await make_admin(client, container))
    gone = await signup(client, "goneuser")
    assert (await client.delete(f"{USERS}/{gone['user_id']}", headers=admin)).status_code == 204

    unknown = await client.request(method, mfa_of(uuid.uuid4()), headers=admin)
    malformed = await client.request(method, mfa_of("not-a-uuid"), headers=admin)
    of_deleted = await client.request(method, mfa_of(gone["user_id"]), headers=admin)

    assert unknown.status_code == 404 and unknown.json()["code"] == "user_not_found"
    assert malformed.status_code == 422
    # A deleted account can be looked at (the console lists it); there is nothing to change.
    assert of_deleted.status_code == (200 if method == "GET" else 404)
