"""Every SQL statement about API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import ApiKey, User


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, key: ApiKey) -> None:
        self.session.add(key)

    async def with_owner(self, key_id: str) -> tuple[ApiKey, User] | None:
        query = (
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.key_id == key_id)
        )
        row = (await self.session.execute(query)).first()
        return None if row is None else (row[0], row[1])

    async def of_user(self, user_id: uuid.UUID) -> Sequence[ApiKey]:
        query = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at)
        return (await self.session.scalars(query)).all()

    async def get(self, key_uuid: uuid.UUID) -> ApiKey | None:
        return await self.session.get(ApiKey, key_uuid)

    async def touch(self, key_id: str, at: datetime, older_than: datetime) -> None:
        """Write last_used_at only when the stored one is older, so busy keys write rarely."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.key_id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < older_than),
            )
            .values(last_used_at=at)
            .execution_options(synchronize_session=False)
        )
