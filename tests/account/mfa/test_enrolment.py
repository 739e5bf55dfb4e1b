"""Enrolling an authenticator app over HTTP: the secret and QR code, confirming with a code,
recovery codes shown once, nothing secret stored in the clear, who may do it."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select

from globeguard.events.models import OutboxEvent
from tests.account.mfa.support import (
    CONFIRM,
    MFA,
    TOTP,
    code_at,
    enrolled_user,
    start,
    stored,
    user_id_of,
    wrong_code,
)
from tests.helpers import STRONG, bearer, make_admin, signup


async def event_types(container, user_id) -> list[tuple[str, dict[str, Any]]]:
    async with container.db.read() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.user_id == user_id, OutboxEvent.type.like("user.mfa.%"))
            .order_by(OutboxEvent.seq)
        )
        return [(row.type, row.payload) for row in rows]


async def test_enrol_confirm_and_codes_shown_once(client, container, clock):
    headers = bearer(await signup(client, "ann"))
    before = await client.get(MFA, headers=headers)
    assert before.json() == {
        "totp": {"enrolled": False, "pending": False, "confirmed_at": None},
        "recovery_codes_left": 0,
    }

    enrolment = await start(client, headers)
    secret = enrolment["secret"]
    assert enrolment["otpauth_uri"] == (
        f"otpauth://totp/Globeguard:ann?secret={secret}"
        "&issuer=Globeguard&algorithm=SHA1&digits=6&period=30"
    )
    svg = enrolment["qr_svg"]
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "href" not in svg and "<image" not in svg and "url(" not in svg
    pending = (await client.get(MFA, headers=headers)).json()
    assert pending["totp"] == {"enrolled": False, "pending": True, "confirmed_at": None}

    confirmed = await client.post(
        CONFIRM, headers=headers, json={"code": code_at(secret, clock.now)}
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10

    after = await client.get(MFA, headers=headers)
    assert after.json()["totp"]["enrolled"] is True
    assert after.json()["totp"]["confirmed_at"] is not None
    assert after.json()["recovery_codes_left"] == 10
    assert not any(code in after.text for code in codes)
    # Confirming again cannot show them again.
    again = await client.post(
        CONFIRM, headers=headers, json={"code": code_at(secret, clock.now, steps=1)}
    )
    assert again.status_code == 409 and again.json()["code"] == "mfa_already_enrolled"
    assert not any(code in again.text for code in codes)

    user_id = await user_id_of(client, headers)
    assert await event_types(container, user_id) == [
        ("user.mfa.enrolled", {"user_id": str(user_id), "factor": "totp"})
    ]


async def test_nothing_secret_is_stored_in_the_clear(client, container, clock):
    headers, secret, codes = await enrolled_user(client, clock, "bea")
    factor, rows = await stored(container, await user_id_of(client, headers))
    assert factor is not None
    raw_key = pyotp.TOTP(secret).byte_secret()
    for value in factor.values():
        text = str(value)
        assert secret not in text and secret.lower() not in text
        assert raw_key.hex() not in text
    assert len(rows) == 10
    for row in rows:
        assert len(row["code_hash"]) == 64 and row["used_at"] is None
        for code in codes:
            plain = code.replace("-", "")
            assert plain not in row["code_hash"] and code not in row["code_hash"]
            assert row["code_hash"] != hashlib.sha256(plain.encode()).hexdigest()


async def test_a_second_start_replaces_the_pending_secret(client, clock):
    headers = bearer(await signup(client, "cid"))
    first = (await start(client, headers))["secret"]
    second = (await start(client, headers))["secret"]
    assert first != second
    stale = await client.post(CONFIRM, headers=headers, json={"code": code_at(first, clock.now)})
    assert stale.status_code == 400 and stale.json()["code"] == "invalid_mfa_code"
    fresh = await client.post(CONFIRM, headers=headers, json={"code": code_at(second, clock.now)})
    assert fresh.status_code == 200, fresh.text


async def test_start_with_an_active_authenticator_is_409_and_keeps_it(client, container, clock):
    headers, secret, _ = await enrolled_user(client, clock, "dee")
    response = await client.post(TOTP, headers=headers)
    assert response.status_code == 409 and response.json()["code"] == "mfa_already_enrolled"
    assert "secret" not in response.json()
    clock.advance(30)
    user_id = await user_id_of(client, headers)
    async with container.db.transaction() as session:
        assert await container.mfa.check(session, user_id, code_at(secret, clock.now)) == "totp"


async def test_confirm_without_an_enrolment_is_404(client, clock):
    headers = bearer(await signup(client, "eve"))
    response = await client.post(CONFIRM, headers=headers, json={"code": "123456"})
    assert response.status_code == 404 and response.json()["code"] == "mfa_not_enrolled"


async def test_wrong_confirmation_codes_are_counted_then_locked(client, container, clock):
    headers = bearer(await signup(client, "fay"))
    secret = (await start(client, headers))["secret"]
    right = code_at(secret, clock.now)
    wrong = wrong_code(secret, clock.now)
    threshold = container.settings.auth.lockout_threshold
    statuses = []
    for _ in range(threshold + 1):
        response = await client.post(CONFIRM, headers=headers, json={"code": wrong})
        statuses.append(response.status_code)
    assert statuses == [400] * threshold + [429]
    locked = await client.post(CONFIRM, headers=headers, json={"code": right})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    status = (await client.get(MFA, headers=headers)).json()
    assert status["totp"]["enrolled"] is False


@pytest.mark.parametrize(
    "body",
    [
        {"code": "12345"},
        {"code": "1234567"},
        {"code": "12345a"},
        {"code": "abcdef"},
        {"code": "123\u0000456"},
        {"code": "9" * 100_000},
        {"code": ""},
        {"code": 123456},
        {"code": None},
        {},
        {"code": "123456", "extra": 1},
        [],
    ],
)
async def test_malformed_confirmation_is_4xx_and_costs_no_guess(client, container, clock, body):
    headers = bearer(await signup(client, "gus"))
    secret = (await start(client, headers))["secret"]
    response = await client.post(CONFIRM, headers=headers, json=body)
    assert 400 <= response.status_code < 500 and response.status_code != 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    # None of these took a slot: the threshold of real guesses is still whole.
    right = code_at(secret, clock.now)
    wrong = wrong_code(secret, clock.now)
    for _ in range(container.settings.auth.lockout_threshold - 1):
        missed = await client.post(CONFIRM, headers=headers, json={"code": wrong})
        assert missed.status_code == 400
    ok = await client.post(CONFIRM, headers=headers, json={"code": right})
    assert ok.status_code == 200, ok.text


async def test_a_code_typed_with_a_space_confirms(client, clock):
    headers = bearer(await signup(client, "hal"))
    secret = (await start(client, headers))["secret"]
    code = code_at(secret, clock.now)
    response = await client.post(CONFIRM, headers=headers, json={"code": f"{code[:3]} {code[3:]}"})
    assert response.status_code == 200, response.text


# --- who may manage factors ------------------------------------------------------------------


async def create_key(client, tokens, scopes: list[str]) -> str:
    response = await client.post(
        "/api/v1/api-keys", headers=bearer(tokens), json={"name": "ci", "scopes": scopes}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


async def machine_token(client: httpx.AsyncClient, admin) -> str:
    created = await client.post(
        "/api/v1/clients", headers=bearer(admin), json={"name": "bot", "scopes": ["users:read"]}
    )
    assert created.status_code == 201, created.text
    machine = created.json()
    response = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": machine["client_id"],
            "client_secret": machine["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def narrow_token(client: httpx.AsyncClient, username: str) -> str:
    response = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": STRONG,
            "scope": "users:read",
        },
    )
    assert response.status_code == 200, response.text
    assert "profile" not in response.json()["scope"].split()
    return str(response.json()["access_token"])


async def test_only_a_signed_in_session_may_manage_factors(client, container, clock):
    admin = await make_admin(client, container)
    narrow_key = await create_key(client, admin, ["users:read"])
    profile_key = await create_key(client, admin, ["profile", "users:read", "users:write"])
    refused = {
        "narrow API key": ({"X-API-KEY": narrow_key}, 403, "forbidden"),
        "API key with profile": ({"X-API-KEY": profile_key}, 403, "session_required"),
        "machine client": (
            {"Authorization": f"Bearer {await machine_token(client, admin)}"},
            401,
            "user_required",
        ),
        "token without profile": (
            {"Authorization": f"Bearer {await narrow_token(client, 'root')}"},
            403,
            "forbidden",
        ),
        "nobody": ({}, 401, "not_authenticated"),
    }
    proof = {"password": STRONG}
    for name, (headers, status, code) in refused.items():
        for method, path, body in (
            ("POST", TOTP, None),
            ("POST", CONFIRM, {"code": "123456"}),
            ("DELETE", TOTP, proof),
            ("POST", "/api/v1/mfa/recovery-codes", proof),
        ):
            response = await client.request(method, path, headers=headers, json=body)
            assert (response.status_code, response.json()["code"]) == (status, code), (
                name,
                method,
                path,
                response.text,
            )
    factor, _ = await stored(container, await user_id_of(client, bearer(admin)))
    assert factor is None
    # Reading the status is harmless: any credential with `profile` may.
    readable = await client.get(MFA, headers={"X-API-KEY": profile_key})
    assert readable.status_code == 200
    unreadable = await client.get(MFA, headers={"X-API-KEY": narrow_key})
    assert unreadable.status_code == 403
