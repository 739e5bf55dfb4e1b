"""Reading the outbox: as an audit trail, and as the public event stream."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.envelope import envelope
from globeguard.events.filters import matches_any
from globeguard.events.models import OutboxEvent
from globeguard.events.repository import OutboxRepository
from globeguard.kit.clock import Clock, utcnow


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


class EventStreamService:
    """`GET /events?after=`: the outbox as a replayable stream of public envelopes."""

    def __init__(self, settle: timedelta, dialect: str, clock: Clock = utcnow) -> None:
        # SQLite has one writer: a row is visible in seq order, so no settling is needed.
        self.settle = settle if dialect == "postgresql" else None
        self.clock = clock

    async def page(
        self,
        session: AsyncSession,
        *,
        after: int,
        limit: int,
        patterns: Sequence[str],
        include_pii: bool,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Envelopes after seq `after` matching `patterns` (all when empty), and the seq to go
        on from: the last one scanned, so a filtered page may hold fewer than `limit` items
        yet the next page never rescans. None when the stream is read to its end."""
        before = self.clock() - self.settle if self.settle else None
        rows = await OutboxRepository(session).stream(
            after=after, limit=limit, occurred_before=before
        )
        items = [
            {"seq": row.seq, **envelope(row, include_pii=include_pii)}
            for row in rows
            if not patterns or matches_any(patterns, row.type)
        ]
        return items, (rows[-1].seq if len(rows) == limit else None)
