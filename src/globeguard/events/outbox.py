"""Writing to the outbox, always inside the caller's transaction (never committed here).

A Core INSERT executed at once, not an ORM object left for the flush: the row needs no
identity tracking, and skipping the unit of work saves ~0.2 ms per event on hot paths such
as sign-in.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.models import OutboxEvent
from globeguard.kit.clock import utcnow
from globeguard.kit.ids import event_id


async def record(
    session: AsyncSession,
    type_: EventType,
    *,
    actor: str,
    aggregate_type: str,
    aggregate_id: str | None,
    user_id: uuid.UUID | None,
    payload: dict[str, Any],
    aggregate_version: int | None = None,
) -> str:
    """Append one event; returns its public id."""
    public_id = event_id()
    await session.execute(
        insert(OutboxEvent).values(
            event_id=public_id,
            type=str(type_),
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            aggregate_version=aggregate_version,
            user_id=user_id,
            actor=actor,
            payload=payload,
            occurred_at=utcnow(),
        )
    )
    return public_id
