"""The dispatcher's statements on the delivery ledger: fan-out, leases, claims, settling. Each
handles a whole batch in one statement (built once, in statements.py); redrive, reads and
retention are in repository.py."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.bulk import json_rows, run_steps
from globeguard.db.sqlite_writer import Step
from globeguard.events.delivery import statements
from globeguard.events.delivery.records import (
    Claimed,
    EventRow,
    FanoutEvent,
    Settlement,
    ordering_key,
)
from globeguard.events.delivery.statements import sqlite_text, sqlite_uuid

# The SQLite settle as raw SQL for the writer (named parameters, as sqlite3 takes them),
# after what makes the TEMP objects it writes through (_settle_sqlite says why).
_SETTLE_SETUP: list[Step] = [(str(s), (), False) for s in statements.SQLite.SETTLE_SETUP]
_SETTLE_SQL = str(statements.SQLite.SETTLE)
# Fan-out's writes, likewise deferred on SQLite: nothing reads what they return, so they ride
# along with the cycle's next statement (the claim, which then sees the new deliveries) or
# its COMMIT, two hops to the writer thread fewer a fan-out.
_INSERT_DELIVERIES_SQL = str(statements.SQLite.INSERT_DELIVERIES)
_MARK_DISPATCHED_SQL = str(statements.SQLite.MARK_DISPATCHED)

# A fan-out row: (event seq, subscription id, ordering key).
FanoutRow = tuple[int, uuid.UUID, str]


def _json(rows: Sequence[Any]) -> str:
    return orjson.dumps(rows).decode()


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"
        # Claims return their events' columns too: events() then reads none.
        self._claimed_events: dict[int, EventRow] = {}
        # A claim was skipped: another worker held the subscription's lock (PostgreSQL).
        self.contended = False

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
        rows = (await self.session.execute(statements.UNDISPATCHED, {"b_limit": limit})).all()
        return [FanoutEvent(r[0], r[1], ordering_key(r[2], r[3], r[4])) for r in rows]

    async def insert_deliveries(self, rows: Sequence[FanoutRow], now: datetime) -> None:
        """Pending deliveries, due now. Idempotent: a (event, subscription) pair that already
        has a delivery is left alone, so running fan-out twice, or in two workers, creates
        nothing new."""
        if not rows:
            return
        if self._postgres:
            seqs, subs, keys = (list(column) for column in zip(*rows, strict=True))
            params = {"b_seqs": seqs, "b_subs": subs, "b_keys": keys, "b_now": now}
            await self.session.execute(statements.Postgres.INSERT_DELIVERIES, params)
            return
        encoded = _json([(seq, sqlite_uuid(sub), key) for seq, sub, key in rows])
        params = {"b_rows": encoded, "b_now": sqlite_text(now)}
        await run_steps(self.session, [(_INSERT_DELIVERIES_SQL, params, False)])

    async def mark_dispatched(self, seqs: Sequence[int], now: datetime) -> None:
        if not seqs:
            return
        if self._postgres:
            params = {"b_seqs": self._seqs(seqs), "b_now": now}
            await self.session.execute(statements.Postgres.MARK_DISPATCHED, params)
            return
        params = {"b_seqs": self._seqs(seqs), "b_now": sqlite_text(now)}
        await run_steps(self.session, [(_MARK_DISPATCHED_SQL, params, False)])

    # -- leases and claims -------------------------------------------------------------------

    async def reclaim_expired(self, now: datetime, max_expiries: int) -> list[tuple[int, str]]:
        """Leases past their end go back to pending; a delivery whose lease expired
        `max_expiries` times keeps killing (or hanging) workers and is dead as poison."""
        result = await self.session.execute(
            statements.RECLAIM, {"b_now": now, "b_max": max_expiries}
        )
        return [(r[0], r[1]) for r in result.all()]

    async def lock_subscription(self, subscription_id: uuid.UUID) -> bool:
        """PostgreSQL: claims for one subscription are made by one worker at a time, which keeps
        `max_in_flight` exact across workers; a worker finding it busy moves on."""
        if not self._postgres:
            return True
        taken = await self.session.scalar(statements.LOCK_SUBSCRIPTION, {"b_sub": subscription_id})
        return taken is not None

    async def in_flight(self, subscription_id: uuid.UUID) -> int:
        return int(await self.session.scalar(statements.IN_FLIGHT, {"b_sub": subscription_id}) or 0)

    async def claim(
        self,
        subscription_id: uuid.UUID,
        *,
        ordered: bool,
        limit: int,
        max_in_flight: int,
        now: datetime,
        owner: str,
        lease_until: datetime,
    ) -> list[Claimed]:
        """Up to `limit` due deliveries of the subscription, leased to `owner`, most overdue
        first (event order for a fan-out or a redrive), never more than `max_in_flight` in
        flight; none on PostgreSQL while another worker is claiming for it. Sorted by event."""
        if not await self.lock_subscription(subscription_id):
            self.contended = True
            return []
        params = {
            "b_sub": subscription_id,
            "b_now": now,
            "b_limit": limit,
            "b_max": max_in_flight,
            "b_owner": owner,
            "b_lease_until": lease_until,
        }
        if not self._postgres:
            rows = (await self.session.execute(statements.SQLite.CLAIM[ordered], params)).all()
            claimed = [Claimed(r[0], r[1], subscription_id, r[2]) for r in rows]
            for r in rows:
                self._claimed_events[r[1]] = _sqlite_event(r[1], r[3])
        else:
            rows = (await self.session.execute(statements.Postgres.CLAIM[ordered], params)).all()
            claimed = [Claimed(r[0], r[2], subscription_id, r[1]) for r in rows]
            for r in rows:
                self._claimed_events[r[2]] = EventRow(*r[2:])
        claimed.sort(key=_by_event)
        return claimed

    async def events(self, seqs: Sequence[int]) -> dict[int, EventRow]:
        found = {s: e for s in seqs if (e := self._claimed_events.get(s)) is not None}
        missing = [s for s in seqs if s not in found]
        if missing:
            statement = (statements.Postgres if self._postgres else statements.SQLite).EVENTS
            result = await self.session.execute(statement, {"b_seqs": self._seqs(missing)})
            found.update((row[0], EventRow(*row)) for row in result.all())
        return found

    def _seqs(self, seqs: Sequence[int]) -> Any:
        return list(seqs) if self._postgres else _json(list(seqs))

    # -- settling attempts -------------------------------------------------------------------

    async def settle(self, settlements: Sequence[Settlement], worker: str) -> None:
        """Attempt rows and delivery updates in the caller's transaction, one statement each
        for the whole batch. A delivery whose lease was taken from us (it expired and another
        worker claimed it) keeps the other worker's state; its attempt row is still written,
        because the attempt did happen. Two attempts of one delivery in a batch (its lease
        expired and this worker claimed it again): the first one settles it, as it would
        row by row, and both are on record."""
        if not settlements:
            return
        owner = settlements[0].owner
        if any(s.owner != owner for s in settlements):
            raise ValueError("one batch, one lease owner")
        if self._postgres:
            await self._settle_postgres(settlements, owner, worker)
        else:
            await self._settle_sqlite(settlements, worker)

    async def _settle_sqlite(self, settlements: Sequence[Settlement], worker: str) -> None:
        text = sqlite_text
        rows = [
            (
                s.delivery_id,
                s.status,
                text(s.next_attempt_at),
                s.last_status,
                s.last_error,
                s.dead_reason,
                text(s.finished_at),
                text(s.attempted_at),
                s.duration_ms,
                s.outcome,
                s.response,
            )
            for s in settlements
        ]
        params = {"b_rows": _json(rows), "b_owner": settlements[0].owner, "b_worker": worker}
        # Deferred: the settle rides along with the transaction's next statement (the claim)
        # or its COMMIT, one hop to the writer thread fewer a cycle. It makes the TEMP view
        # and trigger it writes through first (IF NOT EXISTS: a new writer connection, or
        # one whose transaction that made them rolled back, lacks them), as a later failure
        # could no longer be retried in the transaction.
        await run_steps(self.session, [*_SETTLE_SETUP, (_SETTLE_SQL, params, False)])

    async def _settle_postgres(
        self, settlements: Sequence[Settlement], owner: str, worker: str
    ) -> None:
        """One JSON text for the batch, not an array per column: asyncpg checks every array
        element against abstract base classes (~18 checks an attempt), where orjson writes
        the rows in C and PostgreSQL reads them in C. Each row says whether it is its
        delivery's first attempt in the batch, the one that settles it."""
        rows = [
            (
                s.delivery_id,
                first,
                s.status,
                s.next_attempt_at,
                s.last_status,
                s.last_error,
                s.dead_reason,
                s.finished_at,
                s.attempted_at,
                s.duration_ms,
                s.outcome,
                s.response,
            )
            for s, first in zip(settlements, _firsts(settlements), strict=True)
        ]
        await self.session.execute(
            statements.Postgres.SETTLE,
            {"b_rows": json_rows(rows), "b_worker": worker, "b_owner": owner},
        )


def _firsts(settlements: Sequence[Settlement]) -> list[bool]:
    """For each attempt: is it the first of its delivery in the batch."""
    seen: set[int] = set()
    firsts = []
    for s in settlements:
        firsts.append(s.delivery_id not in seen)
        seen.add(s.delivery_id)
    return firsts


def _sqlite_event(seq: int, columns: str) -> EventRow:
    """An event from the JSON array a SQLite claim returns: event_id, type, aggregate_type,
    aggregate_id, aggregate_version, occurred_at (stored text, UTC), payload."""
    event_id, type_, aggregate_type, aggregate_id, version, occurred_at, payload = orjson.loads(
        columns
    )
    when = datetime.fromisoformat(occurred_at).replace(tzinfo=UTC)
    return EventRow(seq, event_id, type_, aggregate_type, aggregate_id, version, when, payload)


def _by_event(claimed: Claimed) -> int:
    return claimed.event_seq
