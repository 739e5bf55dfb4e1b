"""Every SQL statement about sign-in sessions and refresh tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from globeguard.identity.models import AuthSession, RefreshToken

# Built once: sign-in is hot, these rows need no identity tracking, and constructing the
# statements per call cost more than running them.
_INSERT_SESSION = insert(cast(Table, AuthSession.__table__))
_INSERT_REFRESH = insert(cast(Table, RefreshToken.__table__))


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_session(self, **values: Any) -> None:
        await self.session.execute(_INSERT_SESSION, values)

    async def insert_refresh(self, **values: Any) -> None:
        await self.session.execute(_INSERT_REFRESH, values)

    async def get(self, session_id: uuid.UUID) -> AuthSession | None:
        return await self.session.get(AuthSession, session_id)

    async def of_user(
        self, user_id: uuid.UUID, *, live_only: bool, now: datetime
    ) -> Sequence[AuthSession]:
        query = select(AuthSession).where(AuthSession.user_id == user_id)
        if live_only:
            query = query.where(AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
        return (await self.session.scalars(query.order_by(AuthSession.created_at))).all()

    async def refresh_by_hash(self, token_hash: str) -> tuple[RefreshToken, AuthSession] | None:
        query = (
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == token_hash)
        )
        row = (await self.session.execute(query)).first()
        return None if row is None else (row[0], row[1])

    async def claim_refresh(self, token_id: uuid.UUID, at: datetime) -> bool:
        """Mark the token used; False if a concurrent request used it first."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
            .values(used_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def has_used_child(self, token_id: uuid.UUID) -> bool:
        child = aliased(RefreshToken)
        query = select(exists().where(child.parent_id == token_id, child.used_at.is_not(None)))
        return bool(await self.session.scalar(query))

    async def revoke(self, session_id: uuid.UUID, at: datetime, reason: str) -> bool:
        result = await self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def touch(self, session_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id)
            .values(last_seen_at=at)
            .execution_options(synchronize_session=False)
        )
