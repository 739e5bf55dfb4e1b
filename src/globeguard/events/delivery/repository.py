"""The delivery ledger's statements for everyone but the dispatcher (whose are in ledger.py):
redrive, reads, the backlog gauges, retention."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.delivery.records import (
    DEAD,
    OPEN_STATUSES,
    PENDING,
    SUCCEEDED,
    SubscriptionBacklog,
)
from globeguard.events.models import Delivery, DeliveryAttempt, OutboxEvent, Subscription
from globeguard.kit.clock import as_utc

_DELIVERY = cast(Table, Delivery.__table__)
_ATTEMPT = cast(Table, DeliveryAttempt.__table__)


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- redrive -----------------------------------------------------------------------------

    async def redrivable(
        self,
        *,
        subscription_id: uuid.UUID | None,
        ids: Sequence[int] | None,
        since: datetime | None,
        until: datetime | None,
        statuses: Sequence[str],
        limit: int,
    ) -> list[int]:
        query = select(Delivery.id).where(Delivery.status.in_(statuses))
        if subscription_id is not None:
            query = query.where(Delivery.subscription_id == subscription_id)
        if ids is not None:
            query = query.where(Delivery.id.in_(ids))
        if since is not None:
            query = query.where(Delivery.created_at >= since)
        if until is not None:
            query = query.where(Delivery.created_at < until)
        query = query.order_by(Delivery.event_seq, Delivery.id).limit(limit)
        return list(await self.session.scalars(query))

    async def release(self, schedule: Sequence[tuple[int, datetime]], now: datetime) -> None:
        """Back to pending with a fresh budget of attempts, each at its own time."""
        if not schedule:
            return
        statement = (
            _DELIVERY.update()
            .where(
                _DELIVERY.c.id == bindparam("b_id"),
                # Not IN (…): an expanding parameter cannot be used with executemany.
                or_(_DELIVERY.c.status == DEAD, _DELIVERY.c.status == SUCCEEDED),
            )
            .values(
                status=PENDING,
                attempts=0,
                lease_expiries=0,
                dead_reason=None,
                finished_at=None,
                next_attempt_at=bindparam("b_at"),
                redrives=_DELIVERY.c.redrives + 1,
                updated_at=now,
            )
        )
        await self.session.execute(statement, [{"b_id": i, "b_at": at} for i, at in schedule])

    # -- reading -----------------------------------------------------------------------------

    async def get(self, delivery_id: int) -> Delivery | None:
        return await self.session.get(Delivery, delivery_id)

    async def page(
        self, subscription_id: uuid.UUID, *, statuses: Sequence[str], after: int, limit: int
    ) -> Sequence[Delivery]:
        query = (
            select(Delivery)
            .where(Delivery.subscription_id == subscription_id, Delivery.id > after)
            .order_by(Delivery.id)
            .limit(limit)
        )
        if statuses:
            query = query.where(Delivery.status.in_(statuses))
        return (await self.session.scalars(query)).all()

    async def attempts_of(self, delivery_id: int) -> Sequence[DeliveryAttempt]:
        query = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
        return (await self.session.scalars(query)).all()

    async def backlog(self) -> list[SubscriptionBacklog]:
        """Per subscription: when its oldest unsettled delivery was created, and its dead count.
        Two grouped, index-backed queries rather than counters: true across processes and
        restarts."""
        oldest = dict(
            (
                await self.session.execute(
                    select(Delivery.subscription_id, func.min(Delivery.created_at))
                    .where(Delivery.status.in_(OPEN_STATUSES))
                    .group_by(Delivery.subscription_id)
                )
            ).all()
        )
        dead = dict(
            (
                await self.session.execute(
                    select(Delivery.subscription_id, func.count())
                    .where(Delivery.status == DEAD)
                    .group_by(Delivery.subscription_id)
                )
            ).all()
        )
        subscriptions = list(await self.session.scalars(select(Subscription.id)))
        return [
            SubscriptionBacklog(
                s,
                _as_datetime(oldest.get(s)),
                int(dead.get(s, 0)),
            )
            for s in subscriptions
        ]

    async def oldest_undispatched(self) -> datetime | None:
        value = await self.session.scalar(
            select(func.min(OutboxEvent.occurred_at)).where(OutboxEvent.dispatched_at.is_(None))
        )
        return _as_datetime(value)

    # -- retention ---------------------------------------------------------------------------

    async def purge_outbox_batch(self, cutoff: datetime, batch: int) -> int:
        """Delete up to `batch` outbox rows older than `cutoff` that are fanned out and whose
        deliveries are all settled (their deliveries and attempts go with them). An event
        still owed to a subscriber stays, however old."""
        open_delivery = exists().where(
            Delivery.event_seq == OutboxEvent.seq, Delivery.status.in_(OPEN_STATUSES)
        )
        victims = (
            select(OutboxEvent.seq)
            .where(
                OutboxEvent.occurred_at < cutoff,
                OutboxEvent.dispatched_at.is_not(None),
                ~open_delivery,
            )
            .order_by(OutboxEvent.seq)
            .limit(batch)
        )
        seqs = list(await self.session.scalars(victims))
        if not seqs:
            return 0
        # Children first: ON DELETE CASCADE would do it too, but explicit deletes keep the
        # work visible and do not depend on SQLite's foreign_keys pragma.
        ids = select(Delivery.id).where(Delivery.event_seq.in_(seqs))
        await self.session.execute(_ATTEMPT.delete().where(_ATTEMPT.c.delivery_id.in_(ids)))
        await self.session.execute(_DELIVERY.delete().where(_DELIVERY.c.event_seq.in_(seqs)))
        table = cast(Table, OutboxEvent.__table__)
        await self.session.execute(table.delete().where(table.c.seq.in_(seqs)))
        return len(seqs)


def _as_datetime(value: Any) -> datetime | None:
    """Aggregates skip the column type: SQLite hands back text, PostgreSQL an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        return as_utc(datetime.fromisoformat(value))
    return as_utc(value)
