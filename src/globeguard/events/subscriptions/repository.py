"""Every SQL statement about subscriptions and their secrets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Row, Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.models import Subscription, SubscriptionSecret

_SUB = cast(Table, Subscription.__table__).c
_SECRET = cast(Table, SubscriptionSecret.__table__).c
# What the dispatcher reads every cycle, built once: each enabled subscription with each of
# its keys (plain rows, no ORM objects; one round trip).
_ENABLED_WITH_KEYS = (
    select(
        _SUB.id,
        _SUB.kind,
        _SUB.target,
        _SUB.event_types,
        _SUB.ordered,
        _SUB.include_pii,
        _SUB.rate_limit_per_s,
        _SUB.max_in_flight,
        _SUB.failing_since,
        _SECRET.sealed,
        _SECRET.expires_at,
    )
    .select_from(cast(Table, Subscription.__table__))
    .outerjoin(cast(Table, SubscriptionSecret.__table__), _SECRET.subscription_id == _SUB.id)
    .where(_SUB.disabled_at.is_(None))
    .order_by(_SUB.id, _SECRET.id)
)
_RECORD_SUCCESS = (
    cast(Table, Subscription.__table__)
    .update()
    .where(_SUB.id.in_(bindparam("b_ids", expanding=True)), _SUB.failing_since.is_not(None))
    .values(failing_since=None)
)


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, item: Subscription | SubscriptionSecret) -> None:
        self.session.add(item)

    async def flush(self) -> None:
        await self.session.flush()

    async def get(self, subscription_id: uuid.UUID) -> Subscription | None:
        return await self.session.get(Subscription, subscription_id)

    async def all(self) -> Sequence[Subscription]:
        query = select(Subscription).order_by(Subscription.created_at, Subscription.id)
        return (await self.session.scalars(query)).all()

    async def enabled(self) -> Sequence[Subscription]:
        query = select(Subscription).where(Subscription.disabled_at.is_(None))
        return (await self.session.scalars(query.order_by(Subscription.id))).all()

    async def enabled_with_keys(
        self,
    ) -> Sequence[
        Row[
            uuid.UUID,
            str,
            str,
            list[str],
            bool,
            bool,
            float | None,
            int,
            datetime | None,
            str | None,
            datetime | None,
        ]
    ]:
        """One row per (enabled subscription, key), in subscription then key order: id, kind,
        target, event_types, ordered, include_pii, rate_limit_per_s, max_in_flight,
        failing_since, sealed, expires_at (the last two None for a subscription without
        keys)."""
        return (await self.session.execute(_ENABLED_WITH_KEYS)).all()

    async def secrets_of(
        self, subscription_ids: Sequence[uuid.UUID]
    ) -> Sequence[SubscriptionSecret]:
        if not subscription_ids:
            return []
        query = (
            select(SubscriptionSecret)
            .where(SubscriptionSecret.subscription_id.in_(subscription_ids))
            .order_by(SubscriptionSecret.id)
        )
        return (await self.session.scalars(query)).all()

    async def retire_secrets(
        self, subscription_id: uuid.UUID, scheme: str, expires_at: datetime
    ) -> None:
        """Give the subscription's current keys of `scheme` an end (never a later one)."""
        base = update(SubscriptionSecret).where(
            SubscriptionSecret.subscription_id == subscription_id,
            SubscriptionSecret.scheme == scheme,
        )
        await self.session.execute(
            base.where(SubscriptionSecret.expires_at.is_(None)).values(expires_at=expires_at)
        )
        await self.session.execute(
            base.where(SubscriptionSecret.expires_at > expires_at).values(expires_at=expires_at)
        )

    async def drop_expired_secrets(self, subscription_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            delete(SubscriptionSecret).where(
                SubscriptionSecret.subscription_id == subscription_id,
                SubscriptionSecret.expires_at <= now,
            )
        )

    async def delete(self, subscription: Subscription) -> None:
        await self.session.delete(subscription)
        await self.session.flush()

    async def record_success(self, subscription_ids: Sequence[uuid.UUID]) -> None:
        if subscription_ids:
            await self.session.execute(_RECORD_SUCCESS, {"b_ids": list(subscription_ids)})

    async def record_failure(self, subscription_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id, Subscription.failing_since.is_(None))
            .values(failing_since=now)
        )

    async def disable(
        self,
        subscription_id: uuid.UUID,
        now: datetime,
        reason: str,
        *,
        failing_before: datetime | None = None,
    ) -> bool:
        """Disable unless already disabled; with `failing_before`, only when it has been
        failing since then. True when this call disabled it."""
        query = update(Subscription).where(
            Subscription.id == subscription_id, Subscription.disabled_at.is_(None)
        )
        if failing_before is not None:
            query = query.where(Subscription.failing_since <= failing_before)
        result = await self.session.execute(
            query.values(disabled_at=now, disabled_reason=reason, updated_at=now).execution_options(
                synchronize_session=False
            )
        )
        return bool(getattr(result, "rowcount", 0))
