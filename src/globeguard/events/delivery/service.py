"""Reading the ledger and redriving dead deliveries; the gauges operators alarm on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.events.delivery.repository import DEAD, SUCCEEDED, DeliveryRepository
from globeguard.events.models import Delivery, DeliveryAttempt
from globeguard.events.subscriptions.repository import SubscriptionRepository
from globeguard.kit.clock import Clock, utcnow
from globeguard.kit.errors import NotFound, Unprocessable
from globeguard.settings import DeliverySettings

REDRIVABLE = frozenset({DEAD, SUCCEEDED})


@dataclass(frozen=True, slots=True)
class Redrive:
    count: int
    first_at: datetime | None
    last_at: datetime | None


class DeliveryService:
    def __init__(self, settings: DeliverySettings, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock

    async def page(
        self,
        session: AsyncSession,
        subscription_id: uuid.UUID,
        *,
        statuses: Sequence[str],
        after: int,
        limit: int,
    ) -> tuple[Sequence[Delivery], int | None]:
        if await SubscriptionRepository(session).get(subscription_id) is None:
            raise NotFound("no such subscription", code="subscription_not_found")
        rows = await DeliveryRepository(session).page(
            subscription_id, statuses=statuses, after=after, limit=limit
        )
        return rows, (rows[-1].id if len(rows) == limit else None)

    async def get(
        self, session: AsyncSession, delivery_id: int
    ) -> tuple[Delivery, Sequence[DeliveryAttempt]]:
        repo = DeliveryRepository(session)
        delivery = await repo.get(delivery_id)
        if delivery is None:
            raise NotFound("no such delivery", code="delivery_not_found")
        return delivery, await repo.attempts_of(delivery_id)

    async def redrive(
        self,
        session: AsyncSession,
        *,
        subscription_id: uuid.UUID | None = None,
        ids: Sequence[int] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Sequence[str] = (DEAD,),
    ) -> Redrive:
        """Send dead (or, asked explicitly, succeeded) deliveries again with a fresh budget of
        attempts: oldest event first, released at most `redrive_rate_per_s` a second so a
        receiver that just came back is not flooded. They keep their `webhook-id`."""
        bad = set(statuses) - REDRIVABLE
        if bad or not statuses:
            raise Unprocessable(
                f"only {sorted(REDRIVABLE)} deliveries can be redriven", code="invalid_status"
            )
        if ids is None and subscription_id is None:
            raise Unprocessable("name deliveries or a subscription", code="nothing_to_redrive")
        if since is not None and until is not None and since >= until:
            raise Unprocessable("`since` must be before `until`", code="invalid_window")
        if since is not None and (until or self.clock()) - since > self.settings.outbox_retention:
            raise Unprocessable(
                "the window may not exceed the outbox retention", code="invalid_window"
            )
        if (
            subscription_id is not None
            and await SubscriptionRepository(session).get(subscription_id) is None
        ):
            raise NotFound("no such subscription", code="subscription_not_found")
        repo = DeliveryRepository(session)
        found = await repo.redrivable(
            subscription_id=subscription_id,
            ids=ids,
            since=since,
            until=until,
            statuses=list(statuses),
            limit=self.settings.redrive_max,
        )
        now = self.clock()
        spacing = timedelta(seconds=1 / self.settings.redrive_rate_per_s)
        schedule = [(delivery_id, now + spacing * i) for i, delivery_id in enumerate(found)]
        await repo.release(schedule, now)
        if not schedule:
            return Redrive(0, None, None)
        return Redrive(len(schedule), schedule[0][1], schedule[-1][1])


class BacklogGauges:
    """Scrape-time refresher of the lag, DLQ-depth and relay gauges, from indexed queries."""

    def __init__(self, db: Database, metrics: Any, clock: Clock = utcnow) -> None:
        self.db = db
        self.metrics = metrics
        self.clock = clock

    async def refresh(self) -> None:
        now = self.clock()
        async with self.db.read() as session:
            repo = DeliveryRepository(session)
            backlog = await repo.backlog()
            oldest = await repo.oldest_undispatched()
        self.metrics.delivery_lag.replace(
            {(str(b.subscription_id),): _age(now, b.oldest_open) for b in backlog}
        )
        self.metrics.delivery_dead.replace({(str(b.subscription_id),): b.dead for b in backlog})
        self.metrics.outbox_oldest_undispatched.set(_age(now, oldest))


def _age(now: datetime, since: datetime | None) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())
