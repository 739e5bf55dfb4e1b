"""Single-use tokens: issued in the caller's transaction, redeemed once, for one purpose,
before they expire. Only the SHA-256 of a token is stored (a token carries 256 random bits,
so a fast digest is enough; passwords never come through here)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.models import OneTimeToken
from globeguard.account.one_time_repository import OneTimeTokenRepository
from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import random_token, sha256_hex


class Purpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose name
    LOGIN_FEEDBACK = "login_feedback"
    MFA = "mfa"
    TOTP_ENROLMENT = "totp_enrolment"


# A visible prefix per purpose: a token pasted into the wrong endpoint is recognisable in
# support tickets, and secret scanners can match them.
PREFIX = {
    Purpose.VERIFY_EMAIL: "ggv_",
    Purpose.PASSWORD_RESET: "ggr_",
    Purpose.LOGIN_FEEDBACK: "ggf_",
    Purpose.MFA: "ggm_",
    Purpose.TOTP_ENROLMENT: "gge_",
}


@dataclass(frozen=True, slots=True)
class Redeemed:
    id: uuid.UUID
    user_id: uuid.UUID
    data: dict[str, Any]


class OneTimeTokens:
    async def issue(
        self,
        session: AsyncSession,
        purpose: Purpose,
        user_id: uuid.UUID,
        ttl: timedelta,
        data: dict[str, Any] | None = None,
        *,
        supersede: bool = False,
    ) -> str:
        """A new token; with `supersede`, the user's earlier live tokens for this purpose end
        (the newest reset link is the only one that works)."""
        repo = OneTimeTokenRepository(session)
        now = utcnow()
        if supersede:
            await repo.use_all(user_id, purpose, now)
        token = PREFIX[purpose] + random_token()
        await repo.add(
            {
                "id": uuid.uuid4(),
                "token_hash": sha256_hex(token),
                "purpose": str(purpose),
                "user_id": user_id,
                "data": data or {},
                "created_at": now,
                "expires_at": now + ttl,
                "failures": 0,
            }
        )
        return token

    async def redeem(self, session: AsyncSession, purpose: Purpose, token: str) -> Redeemed | None:
        """Use the token up; None when it is unknown, used, expired or for another purpose."""
        row = await OneTimeTokenRepository(session).use(
            sha256_hex(token.strip()), str(purpose), utcnow()
        )
        if row is None:
            return None
        return Redeemed(row.id, row.user_id, dict(row.data or {}))

    async def peek(
        self, session: AsyncSession, purpose: Purpose, token: str
    ) -> OneTimeToken | None:
        """The live token, not used up (a wrong code must not end a step-up)."""
        return await OneTimeTokenRepository(session).live(
            sha256_hex(token.strip()), str(purpose), utcnow()
        )

    async def use(self, session: AsyncSession, purpose: Purpose, token: str) -> bool:
        """Use up a token found with `peek`; False when someone else used it first."""
        return await self.redeem(session, purpose, token) is not None

    async def count_failure(self, session: AsyncSession, token_id: uuid.UUID, limit: int) -> int:
        """One more wrong code against a token; at `limit` the token is dead."""
        return await OneTimeTokenRepository(session).count_failure(token_id, limit, utcnow())

    async def purge_expired(self, session: AsyncSession, now: datetime | None = None) -> int:
        """Tokens a day past their expiry go (kept a day so a late click reads 'expired')."""
        return await OneTimeTokenRepository(session).purge((now or utcnow()) - timedelta(days=1))
