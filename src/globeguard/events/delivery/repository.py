"""Every SQL statement of the delivery ledger. Claims differ by dialect and are tested on both:
PostgreSQL takes rows with `FOR UPDATE SKIP LOCKED` (concurrent workers pass each other's
rows by), SQLite with one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING` under its single
writer lock. SQLAlchemy compiles `with_for_update(skip_locked=True)` to nothing on SQLite,
silently, so the SQLite path must never rely on it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, case, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from globeguard.events.models import Delivery, DeliveryAttempt, OutboxEvent, Subscription
from globeguard.kit.clock import as_utc

PENDING, INFLIGHT, SUCCEEDED, DEAD = "pending", "inflight", "succeeded", "dead"
OPEN_STATUSES = (PENDING, INFLIGHT)

_DELIVERY = cast(Table, Delivery.__table__)
_ATTEMPT = cast(Table, DeliveryAttempt.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
_SUBSCRIPTION = cast(Table, Subscription.__table__)
_D = _DELIVERY.c


@dataclass(frozen=True, slots=True)
class FanoutEvent:
    seq: int
    type: str
    ordering_key: str


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    event_seq: int
    subscription_id: uuid.UUID
    attempts: int


@dataclass(frozen=True, slots=True)
class EventRow:
    """The outbox columns a delivery's body is made of (envelope.OutboxRow)."""

    seq: int
    event_id: str
    type: str
    aggregate_type: str
    aggregate_id: str | None
    aggregate_version: int | None
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one attempt ends in the ledger; written with its attempt row."""

    delivery_id: int
    subscription_id: uuid.UUID
    owner: str
    status: str
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    dead_reason: str | None
    finished_at: datetime | None
    # the attempt row
    attempted_at: datetime
    duration_ms: int
    outcome: str
    response: str | None
    # A 410 answer: the subscription is disabled in the same transaction.
    disable_subscription: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionBacklog:
    subscription_id: uuid.UUID
    oldest_open: datetime | None
    dead: int


def ordering_key(user_id: uuid.UUID | None, aggregate_type: str, aggregate_id: str | None) -> str:
    if user_id is not None:
        return str(user_id)
    return f"{aggregate_type}:{aggregate_id or ''}"[:100]


# -- the dispatcher's statements, built once ------------------------------------------------
# The dispatcher runs these every round; building a statement costs more CPU than SQLite takes
# to run it, so each is built once with bind parameters (and compiled once, then cached).

_UNDISPATCHED = (
    select(
        _OUTBOX.c.seq,
        _OUTBOX.c.type,
        _OUTBOX.c.user_id,
        _OUTBOX.c.aggregate_type,
        _OUTBOX.c.aggregate_id,
    )
    .where(_OUTBOX.c.dispatched_at.is_(None))
    .order_by(_OUTBOX.c.seq)
    .limit(bindparam("b_limit", type_=Integer))
)
_MARK_DISPATCHED = (
    _OUTBOX.update()
    .where(_OUTBOX.c.seq.in_(bindparam("b_seqs", expanding=True)))
    .values(dispatched_at=bindparam("b_now"))
)
_POISON = _D.lease_expiries + 1 >= bindparam("b_max", type_=Integer)
_RECLAIM = (
    _DELIVERY.update()
    .where(_D.status == INFLIGHT, _D.lease_until < bindparam("b_now"))
    .values(
        status=case((_POISON, DEAD), else_=PENDING),
        dead_reason=case((_POISON, "poison_worker"), else_=None),
        finished_at=case((_POISON, bindparam("b_now")), else_=None),
        lease_expiries=_D.lease_expiries + 1,
        lease_owner=None,
        lease_until=None,
        next_attempt_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
    )
    .returning(_D.id, _D.status)
)
_LOCK_SUBSCRIPTION = (
    select(_SUBSCRIPTION.c.id)
    .where(_SUBSCRIPTION.c.id == bindparam("b_sub"))
    .with_for_update(skip_locked=True)
)
_IN_FLIGHT = select(func.count()).where(
    _D.subscription_id == bindparam("b_sub"), _D.status == INFLIGHT
)
_EVENTS = select(
    _OUTBOX.c.seq,
    _OUTBOX.c.event_id,
    _OUTBOX.c.type,
    _OUTBOX.c.aggregate_type,
    _OUTBOX.c.aggregate_id,
    _OUTBOX.c.aggregate_version,
    _OUTBOX.c.occurred_at,
    _OUTBOX.c.payload,
).where(_OUTBOX.c.seq.in_(bindparam("b_seqs", expanding=True)))
_INSERT_ATTEMPT = _ATTEMPT.insert()
_SETTLE = (
    _DELIVERY.update()
    .where(
        _D.id == bindparam("b_id"),
        _D.lease_owner == bindparam("b_owner"),
        _D.status == INFLIGHT,
    )
    .values(
        status=bindparam("b_status"),
        attempts=_D.attempts + 1,
        next_attempt_at=bindparam("b_next"),
        last_status=bindparam("b_last_status"),
        last_error=bindparam("b_last_error"),
        dead_reason=bindparam("b_dead_reason"),
        finished_at=bindparam("b_finished"),
        lease_owner=None,
        lease_until=None,
        updated_at=bindparam("b_now"),
    )
)


def _claim_statement(postgres: bool, ordered: bool) -> Executable:
    due = (
        select(_D.id)
        .where(
            _D.subscription_id == bindparam("b_sub"),
            _D.status == PENDING,
            _D.next_attempt_at <= bindparam("b_now"),
        )
        .order_by(_D.event_seq)
        .limit(bindparam("b_limit", type_=Integer))
    )
    if ordered:
        # A user's delivery waits while an older one of theirs is unsettled (pending or in
        # flight); dead ones do not hold the line, or one poison event would stall the
        # user for good.
        older = _DELIVERY.alias("older")
        due = due.where(
            ~exists().where(
                older.c.subscription_id == _D.subscription_id,
                older.c.ordering_key == _D.ordering_key,
                older.c.event_seq < _D.event_seq,
                older.c.status.in_(OPEN_STATUSES),
            )
        )
    claim = (
        _DELIVERY.update()
        .values(
            status=INFLIGHT,
            lease_owner=bindparam("b_owner"),
            lease_until=bindparam("b_lease_until"),
            updated_at=bindparam("b_now"),
        )
        .returning(_D.id, _D.event_seq, _D.subscription_id, _D.attempts)
    )
    if postgres:
        # A materialized CTE runs the locking SELECT once. Written as `id IN (SELECT …
        # LIMIT n FOR UPDATE SKIP LOCKED)` PostgreSQL may rescan the subquery for each
        # row, skip the rows this very statement just locked, and take far more than n.
        locked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        return claim.where(_D.id == locked.c.id)
    # SQLite evaluates the uncorrelated subquery once, under the write lock.
    return claim.where(_D.id.in_(due), _D.status == PENDING)


_CLAIMS = {
    (pg, ordered): _claim_statement(pg, ordered)
    for pg in (False, True)
    for ordered in (False, True)
}


def _insert_deliveries(postgres: bool) -> Executable:
    insert = pg_insert if postgres else sqlite_insert
    return insert(_DELIVERY).on_conflict_do_nothing(index_elements=["event_seq", "subscription_id"])


_INSERTS = {pg: _insert_deliveries(pg) for pg in (False, True)}


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # -- fan-out -----------------------------------------------------------------------------

    async def fanout_lock(self) -> bool:
        """PostgreSQL: one fan-out at a time across workers (for this transaction), so a user's
        deliveries are created in event order; others skip the round. SQLite: its write lock
        already serialises."""
        if not self._postgres:
            return True
        taken = await self.session.scalar(select(func.pg_try_advisory_xact_lock(0x67674F42)))
        return bool(taken)

    async def undispatched(self, limit: int) -> list[FanoutEvent]:
        rows = (await self.session.execute(_UNDISPATCHED, {"b_limit": limit})).all()
        return [FanoutEvent(r[0], r[1], ordering_key(r[2], r[3], r[4])) for r in rows]

    async def insert_deliveries(self, rows: Sequence[dict[str, Any]]) -> None:
        """Idempotent: a (event, subscription) pair that already has a delivery is left alone,
        so running fan-out twice, or in two workers, creates nothing new."""
        if rows:
            await self.session.execute(_INSERTS[self._postgres], list(rows))

    async def mark_dispatched(self, seqs: Sequence[int], now: datetime) -> None:
        if seqs:
            await self.session.execute(_MARK_DISPATCHED, {"b_seqs": list(seqs), "b_now": now})

    # -- leases and claims -------------------------------------------------------------------

    async def reclaim_expired(self, now: datetime, max_expiries: int) -> list[tuple[int, str]]:
        """Leases past their end go back to pending; a delivery whose lease expired
        `max_expiries` times keeps killing (or hanging) workers and is dead as poison."""
        rows = (await self.session.execute(_RECLAIM, {"b_now": now, "b_max": max_expiries})).all()
        return [(r[0], r[1]) for r in rows]

    async def lock_subscription(self, subscription_id: uuid.UUID) -> bool:
        """PostgreSQL: claims for one subscription are made by one worker at a time, which keeps
        `max_in_flight` exact across workers; a worker finding it busy moves on."""
        if not self._postgres:
            return True
        taken = await self.session.scalar(_LOCK_SUBSCRIPTION, {"b_sub": subscription_id})
        return taken is not None

    async def free_slots(self, subscription_id: uuid.UUID, max_in_flight: int) -> int:
        """How many more of its deliveries may go in flight now: `max_in_flight` minus those
        in flight; 0 on PostgreSQL while another worker is claiming for it. Two statements:
        the count must see what the previous lock holder committed (a statement's snapshot
        in PostgreSQL is taken before it waits for, or takes, the row lock)."""
        if not await self.lock_subscription(subscription_id):
            return 0
        return max_in_flight - await self.in_flight(subscription_id)

    async def in_flight(self, subscription_id: uuid.UUID) -> int:
        return int(await self.session.scalar(_IN_FLIGHT, {"b_sub": subscription_id}) or 0)

    async def claim(
        self,
        subscription_id: uuid.UUID,
        *,
        ordered: bool,
        limit: int,
        now: datetime,
        owner: str,
        lease_until: datetime,
    ) -> list[Claimed]:
        statement = _CLAIMS[(self._postgres, ordered)]
        params = {
            "b_sub": subscription_id,
            "b_now": now,
            "b_limit": limit,
            "b_owner": owner,
            "b_lease_until": lease_until,
        }
        rows = (await self.session.execute(statement, params)).all()
        return sorted((Claimed(r[0], r[1], r[2], r[3]) for r in rows), key=lambda c: c.event_seq)

    async def events(self, seqs: Sequence[int]) -> dict[int, EventRow]:
        if not seqs:
            return {}
        rows = (await self.session.execute(_EVENTS, {"b_seqs": list(seqs)})).all()
        return {row[0]: EventRow(*row) for row in rows}

    # -- settling attempts -------------------------------------------------------------------

    async def settle(self, settlements: Sequence[Settlement], worker: str) -> None:
        """Attempt rows and delivery updates in the caller's transaction. A delivery whose
        lease was taken from us (it expired and another worker claimed it) keeps the other
        worker's state; its attempt row is still written, because the attempt did happen."""
        if not settlements:
            return
        await self.session.execute(
            _INSERT_ATTEMPT,
            [
                {
                    "delivery_id": s.delivery_id,
                    "attempted_at": s.attempted_at,
                    "duration_ms": s.duration_ms,
                    "outcome": s.outcome,
                    "status_code": s.last_status,
                    "error": s.last_error,
                    "response": s.response,
                    "worker": worker,
                }
                for s in settlements
            ],
        )
        await self.session.execute(
            _SETTLE,
            [
                {
                    "b_id": s.delivery_id,
                    "b_owner": s.owner,
                    "b_status": s.status,
                    "b_next": s.next_attempt_at,
                    "b_last_status": s.last_status,
                    "b_last_error": s.last_error,
                    "b_dead_reason": s.dead_reason,
                    "b_finished": s.finished_at,
                    "b_now": s.attempted_at,
                }
                for s in settlements
            ],
        )

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
