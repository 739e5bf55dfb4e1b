"""Enrolling through the API, and codes computed the way an authenticator app does."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pyotp
from sqlalchemy import select

from globeguard.account.models import RecoveryCode, TotpFactor
from tests.helpers import bearer, signup

MFA = "/api/v1/mfa"
TOTP = "/api/v1/mfa/totp"
CONFIRM = "/api/v1/mfa/totp/confirm"
CODES = "/api/v1/mfa/recovery-codes"


def code_at(secret: str, when: datetime, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(when + timedelta(seconds=30 * steps))


def wrong_code(secret: str, when: datetime) -> str:
    """Six digits that are no code of the window around `when` (nor the next step's)."""
    window = {code_at(secret, when, steps) for steps in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in window)


async def start(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(TOTP, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def enrolled_user(
    client: httpx.AsyncClient, clock, username: str, **extra: Any
) -> tuple[dict[str, str], str, list[str]]:
    """A signed-up user with a confirmed authenticator: (auth headers, secret, recovery
    codes). The step the confirmation used is `clock.now`'s."""
    headers = bearer(await signup(client, username, **extra))
    secret = (await start(client, headers))["secret"]
    confirmed = await client.post(
        CONFIRM, headers=headers, json={"code": code_at(secret, clock.now)}
    )
    assert confirmed.status_code == 200, confirmed.text
    return headers, secret, confirmed.json()["recovery_codes"]


async def user_id_of(client: httpx.AsyncClient, headers: dict[str, str]) -> uuid.UUID:
    me = await client.get("/api/v1/users/me", headers=headers)
    return uuid.UUID(me.json()["id"])


async def stored(container, user_id: uuid.UUID) -> tuple[dict[str, Any] | None, list[dict]]:
    """The factor's row and the recovery-code rows, read straight from the database."""
    async with container.db.read() as session:
        factor = await session.scalar(select(TotpFactor).where(TotpFactor.user_id == user_id))
        codes = (
            await session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user_id))
        ).all()
    columns = TotpFactor.__table__.columns
    row = None if factor is None else {c.key: getattr(factor, c.key) for c in columns}
    code_columns = RecoveryCode.__table__.columns
    return row, [{c.key: getattr(code, c.key) for c in code_columns} for code in codes]
