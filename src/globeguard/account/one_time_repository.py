"""Every SQL statement of single-use tokens. Redeeming is one conditional UPDATE … RETURNING,
so two concurrent redemptions of one token cannot both succeed, on SQLite or PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.models import OneTimeToken

_TOKEN = cast(Table, OneTimeToken.__table__)


class OneTimeTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_TOKEN).values(**values))

    def _live(self, token_hash: str, purpose: str, now: datetime) -> Any:
        return (
            (_TOKEN.c.token_hash == token_hash)
            & (_TOKEN.c.purpose == purpose)
            & _TOKEN.c.used_at.is_(None)
            & (_TOKEN.c.expires_at > now)
        )

    async def live(self, token_hash: str, purpose: str, now: datetime) -> OneTimeToken | None:
        row = (
            await self.session.execute(
                select(OneTimeToken).where(self._live(token_hash, purpose, now))
            )
        ).scalar_one_or_none()
        return row

    async def use(self, token_hash: str, purpose: str, now: datetime) -> Any | None:
        """Mark a live token used; returns its row, or None when it was not live."""
        result = await self.session.execute(
            update(_TOKEN)
            .where(self._live(token_hash, purpose, now))
            .values(used_at=now)
            .returning(_TOKEN.c.id, _TOKEN.c.user_id, _TOKEN.c.data, _TOKEN.c.expires_at)
        )
        return result.first()

    async def count_failure(self, token_id: uuid.UUID, limit: int, now: datetime) -> int:
        """One more wrong code against a token; at `limit` it is used up. Returns the count."""
        result = await self.session.execute(
            update(_TOKEN)
            .where(_TOKEN.c.id == token_id, _TOKEN.c.used_at.is_(None))
            .values(failures=_TOKEN.c.failures + 1)
            .returning(_TOKEN.c.failures)
        )
        failures = result.scalar_one_or_none()
        if failures is None:
            return limit
        if failures >= limit:
            await self.session.execute(
                update(_TOKEN).where(_TOKEN.c.id == token_id).values(used_at=now)
            )
        return int(failures)

    async def use_all(self, user_id: uuid.UUID, purpose: str, now: datetime) -> int:
        """End every live token of a user for a purpose (a newer one supersedes them)."""
        result = await self.session.execute(
            update(_TOKEN)
            .where(
                _TOKEN.c.user_id == user_id,
                _TOKEN.c.purpose == purpose,
                _TOKEN.c.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge(self, before: datetime) -> int:
        """Delete tokens that expired before `before` (used or not)."""
        result = await self.session.execute(delete(_TOKEN).where(_TOKEN.c.expires_at < before))
        return int(getattr(result, "rowcount", 0) or 0)
