"""SQL of the demo seeder: users in bulk, one executemany per chunk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.bulk import BulkInsert
from globeguard.identity.models import User

USER = cast(Table, User.__table__)
# Every column a demo user row sets (see demo.service._user_row).
USER_COLUMNS = (
    "id",
    "username",
    "username_key",
    "email",
    "email_key",
    "email_verified",
    "password_hash",
    "given_name",
    "family_name",
    "user_metadata",
    "app_metadata",
    "status",
    "token_version",
    "revision",
    "logins_count",
    "last_login_at",
    "last_login_ip",
    "blocked_at",
    "deleted_at",
    "password_reset_required",
    "created_at",
    "updated_at",
)
_INSERT_USERS = BulkInsert(USER, USER_COLUMNS)


class DemoRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def username_taken(self, username_key: str) -> bool:
        found = await self.session.scalar(
            select(USER.c.id).where(USER.c.username_key == username_key)
        )
        return found is not None

    async def insert_users(self, rows: Sequence[dict[str, Any]]) -> None:
        await _INSERT_USERS.run(self.session, rows)
