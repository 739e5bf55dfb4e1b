"""Reading the outbox as an audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.models import OutboxEvent
from globeguard.events.repository import OutboxRepository


class AuditService:
    async def page(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID | None,
        types: Sequence[str],
        after: int,
        limit: int,
    ) -> tuple[Sequence[OutboxEvent], int | None]:
        """Events after seq `after`, oldest first, and the seq to continue from (None at the
        end)."""
        rows = await OutboxRepository(session).page(
            user_id=user_id, types=types, after=after, limit=limit
        )
        return rows, (rows[-1].seq if len(rows) == limit else None)
