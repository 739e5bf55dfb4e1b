"""Every statement about external users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.ingest.models import ExternalUser


class ExternalUserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_new(
        self, user_id: str, username: str | None, email: str, topic: str, at: datetime
    ) -> int | None:
        """Insert unless the user_id is already stored; the new row's id, None if it was.

        ON CONFLICT DO NOTHING rather than read-then-insert: two deliveries of one message
        racing each other must both succeed as one record, not end one of them in a 409."""
        values: dict[str, Any] = {
            "user_id": user_id,
            "username": username,
            "email": email,
            "topic": topic,
            "created_at": at,
        }
        insert = postgresql.insert if self._dialect() == "postgresql" else sqlite.insert
        statement = (
            insert(ExternalUser)
            .values(values)
            .on_conflict_do_nothing(index_elements=[ExternalUser.user_id])
            .returning(ExternalUser.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get(self, user_id: str) -> ExternalUser | None:
        result = await self.session.execute(
            select(ExternalUser).where(ExternalUser.user_id == user_id)
        )
        return result.scalar_one_or_none()

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name
