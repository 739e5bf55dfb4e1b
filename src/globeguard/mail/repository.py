"""Every SQL statement of the mail outbox."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.mail.models import MailMessage

_MAIL = cast(Table, MailMessage.__table__)


class MailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_MAIL).values(**values))
