"""SQL of the demo seeder: users in bulk, one multi-row INSERT per chunk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import User

USER = cast(Table, User.__table__)


class DemoRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def username_taken(self, username_key: str) -> bool:
        found = await self.session.scalar(
            select(USER.c.id).where(USER.c.username_key == username_key)
        )
        return found is not None

    async def insert_users(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(USER), list(rows))
