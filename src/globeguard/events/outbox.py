"""Writing to the outbox, always inside the caller's transaction (never committed here)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.models import OutboxEvent
from globeguard.kit.clock import utcnow
from globeguard.kit.ids import event_id


def record(
    session: AsyncSession,
    type_: EventType,
    *,
    actor: str,
    aggregate_type: str,
    aggregate_id: str | None,
    user_id: uuid.UUID | None,
    payload: dict[str, Any],
    aggregate_version: int | None = None,
) -> OutboxEvent:
    row = OutboxEvent(
        event_id=event_id(),
        type=str(type_),
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        user_id=user_id,
        actor=actor,
        payload=payload,
        occurred_at=utcnow(),
    )
    session.add(row)
    return row
