"""Outbox retention: events past 14 days go with their settled deliveries and attempts, in
small batches; an event still owed to a subscriber stays however old. On both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from globeguard.events.models import Delivery, DeliveryAttempt, OutboxEvent
from globeguard.events.retention import purge_once
from tests.events.support import FakeClock, Receiver, dispatcher, emit, subscribe


async def _count(container, model) -> int:
    async with container.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_old_settled_events_go_owed_and_recent_ones_stay(app, container):
    clock = FakeClock()
    await subscribe(container, "ok")
    await subscribe(container, "failing", event_types=["user.deleted"])
    old = [await emit(container, uuid.uuid4()) for _ in range(5)]
    from globeguard.events.catalog import EventType

    owed = await emit(container, uuid.uuid4(), EventType.USER_DELETED)
    receiver = Receiver(lambda r: httpx.Response(500 if "failing" in r.url else 200))
    await dispatcher(container, receiver, clock).drain()
    async with container.db.transaction() as session:
        for row in await session.scalars(select(OutboxEvent)):
            row.occurred_at -= timedelta(days=20)
    recent = await emit(container, uuid.uuid4())
    settings = container.settings.delivery.model_copy(update={"retention_batch": 2})
    assert await purge_once(container.db, settings, now=clock.now) == 5
    async with container.db.read() as session:
        left = list(await session.scalars(select(OutboxEvent.event_id).order_by(OutboxEvent.seq)))
    assert left == [owed, recent]
    assert not set(old) & set(left)
    # The owed event's deliveries (one pending retry, one succeeded) stay with it.
    assert await _count(container, Delivery) == 2
    assert await _count(container, DeliveryAttempt) == 2
    assert await purge_once(container.db, settings, now=clock.now) == 0
