"""Every SQL statement reading the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.models import OutboxEvent


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, *, user_id: uuid.UUID | None, types: Sequence[str], after: int, limit: int
    ) -> Sequence[OutboxEvent]:
        query = select(OutboxEvent).where(OutboxEvent.seq > after).order_by(OutboxEvent.seq)
        if user_id is not None:
            query = query.where(OutboxEvent.user_id == user_id)
        if types:
            query = query.where(OutboxEvent.type.in_(types))
        return (await self.session.scalars(query.limit(limit))).all()

    async def stream(
        self, *, after: int, limit: int, occurred_before: datetime | None
    ) -> Sequence[OutboxEvent]:
        query = select(OutboxEvent).where(OutboxEvent.seq > after)
        if occurred_before is not None:
            query = query.where(OutboxEvent.occurred_at < occurred_before)
        return (await self.session.scalars(query.order_by(OutboxEvent.seq).limit(limit))).all()
