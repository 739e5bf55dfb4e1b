"""Every SQL statement about login events. The reads that rebuild a subject's profile for
grading are built in grading_reads and run from here."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from globeguard.db.bulk import BulkInsert
from globeguard.travel.driver_rows import DriverRows
from globeguard.travel.grading_reads import FACTS, SUCCESSES_SINCE, TAIL_FACTS, TALLIES, TRUSTED
from globeguard.travel.models import LoginEvent, LoginProfile


def _before(event: LoginEvent) -> Any:
    return or_(
        LoginEvent.occurred_at < event.occurred_at,
        and_(LoginEvent.occurred_at == event.occurred_at, LoginEvent.id < event.id),
    )


def _after(event: LoginEvent) -> Any:
    return or_(
        LoginEvent.occurred_at > event.occurred_at,
        and_(LoginEvent.occurred_at == event.occurred_at, LoginEvent.id > event.id),
    )


TABLE: Table = LoginEvent.__table__  # type: ignore[assignment]
# Built once: compiling a statement per batch costs more than running it.
_INSERT = DriverRows(
    TABLE,
    # inline: no RETURNING of the new ids, which nothing reads.
    lambda _dialect: (
        insert(TABLE)
        .inline()
        .values({c.name: bindparam(c.name, type_=c.type) for c in TABLE.columns if c.name != "id"})
    ),
)
# One event with its id back (the single-event path: the id names it to later readers).
_INSERT_ONE = (
    insert(TABLE)
    .values({c.name: bindparam(c.name, type_=c.type) for c in TABLE.columns if c.name != "id"})
    .returning(TABLE.c.id)
)
_SET_OUTCOME = (
    update(TABLE)
    .where(TABLE.c.id == bindparam("row_id"))
    .values(success=bindparam("success"), failure_reason=bindparam("reason"))
)
_SET_VERDICT = (
    update(TABLE)
    .where(TABLE.c.id == bindparam("row_id"))
    .values(verdict=bindparam("verdict"), verdict_reasons=bindparam("reasons"))
)


PROFILES: Table = LoginProfile.__table__  # type: ignore[assignment]
_PROFILES_OF = select(PROFILES.c.subject, PROFILES.c.last_at, PROFILES.c.state).where(
    PROFILES.c.subject.in_(bindparam("subjects", expanding=True))
)
_INSERT_PROFILE = BulkInsert(PROFILES, [c.name for c in PROFILES.columns])


def _update_profile(_dialect: Any) -> Any:
    typed = {c.name: bindparam(c.name, type_=c.type) for c in PROFILES.columns}
    return (
        update(PROFILES)
        .where(PROFILES.c.subject == typed["subject"])
        .values(
            last_at=typed["last_at"],
            state=typed["state"],
            user_id=func.coalesce(typed["user_id"], PROFILES.c.user_id),
        )
    )


# One execution per row on PostgreSQL too: arrays are for INSERTs.
_UPDATE_PROFILE = DriverRows(PROFILES, _update_profile, arrays=False)


def _profile_saved(existing: bool) -> Any:
    """The profile's write as a CTE of the event's INSERT (PostgreSQL: one round trip for
    both); its parameters are named `p_<column>` (the event's own take the column names)."""
    typed = {c.name: bindparam(f"p_{c.name}", type_=c.type) for c in PROFILES.columns}
    if existing:
        key = typed["subject"]
        return (
            update(PROFILES)
            .where(PROFILES.c.subject == key)
            .values(
                # Set to itself: an UPDATE sets every column its parameters name (here the
                # event's `subject`) unless told what to set it to.
                subject=key,
                last_at=typed["last_at"],
                state=typed["state"],
                user_id=func.coalesce(typed["user_id"], PROFILES.c.user_id),
            )
            .cte("saved_profile")
        )
    return insert(PROFILES).values(typed).cte("saved_profile")


_INSERT_ONE_SAVING_PROFILE = {
    existing: _INSERT_ONE.add_cte(_profile_saved(existing)) for existing in (False, True)
}
_LOCK_SUBJECT = text("SELECT pg_advisory_xact_lock(hashtext(:s))")
_DIGESTS_OF = select(TABLE.c.event_uuid, TABLE.c.body_digest).where(
    TABLE.c.event_uuid.in_(bindparam("uuids", expanding=True))
)


class LoginEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._connection: AsyncConnection | None = None

    async def _connected(self) -> AsyncConnection:
        """The session's connection, asked for once: each ask is a greenlet switch (~20 us),
        and the connection stays the same until the transaction ends, as this repository's
        use does."""
        if self._connection is None:
            self._connection = await self.session.connection()
        return self._connection

    async def lock_subject(self, subject: str) -> None:
        """Serialise writers of one subject until commit, so concurrent posts see each other.
        SQLite already has a single writer (BEGIN IMMEDIATE)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self._core(_LOCK_SUBJECT, {"s": f"login:{subject}"})

    async def lock_subjects(self, subjects: Collection[str]) -> None:
        """lock_subject for many, in one round trip and a fixed order so that two batches
        never deadlock."""
        if self.session.get_bind().dialect.name == "postgresql":
            keys = sorted(f"login:{s}" for s in subjects)
            await self.session.execute(
                text(
                    "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS text[])) k"
                ),
                {"keys": keys},
            )

    async def digests_of(self, event_uuids: Collection[str]) -> dict[str, str | None]:
        """The body digest stored under each of these uuids that exists."""
        rows = await self._core(_DIGESTS_OF, {"uuids": list(event_uuids)})
        return {u: d for u, d in rows.all()}

    async def _core(self, statement: Any, params: dict[str, Any] | Sequence[dict[str, Any]]) -> Any:
        """Run a prebuilt statement on the session's connection: no ORM loading for plain
        rows, no statement building per call (both cost more than the query on hot paths)."""
        return await (await self._connected()).execute(statement, params)

    async def any_stored(self, subjects: Collection[str], event_uuids: Collection[str]) -> bool:
        """Whether any of these subjects has a stored event, or any of these uuids is taken."""
        for column, values in (
            (TABLE.c.subject, list(subjects)),
            (TABLE.c.event_uuid, list(event_uuids)),
        ):
            # In slices: far below every driver's limit on bound parameters. Counted, not
            # LIMIT 1 (or EXISTS): a plan for the first match takes a sequential scan as the
            # quick way to one, and when none is there, as expected, it reads the whole table.
            for start in range(0, len(values), 1000):
                found = select(func.count()).where(column.in_(values[start : start + 1000]))
                if await self.session.scalar(found):
                    return True
        return False

    async def profiles_of(self, subjects: Collection[str]) -> dict[str, tuple[datetime, Any]]:
        """Each subject's stored profile: (time of its newest event, state document)."""
        rows = await self._core(_PROFILES_OF, {"subjects": list(subjects)})
        return {subject: (last_at, state) for subject, last_at, state in rows.all()}

    async def save_profiles(
        self, inserts: Sequence[dict[str, Any]], updates: Sequence[dict[str, Any]]
    ) -> None:
        """`inserts` and `updates`: {subject, user_id, last_at, state} each. Nothing in the
        transaction reads what they return: on the SQLite writer both ride along with its
        next statement or COMMIT (db.bulk.run_steps)."""
        await _INSERT_PROFILE.run(self.session, inserts)
        await _UPDATE_PROFILE.run(self.session, updates)

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """One executemany; every row carries every column but `id`."""
        await _INSERT.run(self.session, rows)

    async def set_verdicts(self, changes: Sequence[dict[str, Any]]) -> None:
        """`changes`: {row_id, verdict, reasons} each."""
        await self.session.execute(_SET_VERDICT, changes)

    async def by_uuid(self, event_uuid: str) -> LoginEvent | None:
        return await self.session.scalar(
            select(LoginEvent).where(LoginEvent.event_uuid == event_uuid)
        )

    async def insert_one(self, row: dict[str, Any]) -> int:
        """Insert one event (every column but `id`); returns its id."""
        return int((await self._core(_INSERT_ONE, row)).scalar_one())

    async def insert_with_profile(
        self,
        row: dict[str, Any],
        inserts: Sequence[dict[str, Any]],
        updates: Sequence[dict[str, Any]],
    ) -> int:
        """`insert_one`, and `save_profiles` for the one profile `inserts` or `updates`
        holds; returns the event's id."""
        connection = await self._connected()
        if connection.dialect.name != "postgresql":
            event_id = await self.insert_one(row)
            await self.save_profiles(inserts, updates)
            return event_id
        (profile,) = [*inserts, *updates]
        params = {**row, **{f"p_{name}": value for name, value in profile.items()}}
        result = await connection.execute(_INSERT_ONE_SAVING_PROFILE[bool(updates)], params)
        return int(result.scalar_one())

    async def set_outcome(self, event_id: int, success: bool, reason: str | None) -> None:
        await self._core(_SET_OUTCOME, {"row_id": event_id, "success": success, "reason": reason})

    async def preceding(self, event: LoginEvent) -> LoginEvent | None:
        query = (
            select(LoginEvent)
            .where(LoginEvent.subject == event.subject, _before(event))
            .order_by(LoginEvent.occurred_at.desc(), LoginEvent.id.desc())
            .limit(1)
        )
        return await self.session.scalar(query)

    async def subsequent(self, event: LoginEvent) -> LoginEvent | None:
        query = (
            select(LoginEvent)
            .where(LoginEvent.subject == event.subject, _after(event))
            .order_by(LoginEvent.occurred_at, LoginEvent.id)
            .limit(1)
        )
        return await self.session.scalar(query)

    async def first_after(self, subject: str, at: datetime) -> Any:
        query = (
            select(*FACTS)
            .where(LoginEvent.subject == subject, LoginEvent.occurred_at > at)
            .order_by(LoginEvent.occurred_at, LoginEvent.id)
            .limit(1)
        )
        return (await self.session.execute(query)).first()

    async def tallies(
        self, subjects: Collection[str], before: datetime, *, inclusive: bool
    ) -> list[Any]:
        """Per subject with events up to `before`: its latest event (the FACTS columns), the
        number of its successes (`successes`) and the time of the first (`first_success`)."""
        params = {"subjects": list(subjects), "before": before}
        return list((await self._core(TALLIES[inclusive], params)).all())

    async def successes_since(
        self, subjects: Collection[str], since: datetime, before: datetime, *, inclusive: bool
    ) -> list[Any]:
        """The subjects' successes from `since` up to `before`, in event order per subject,
        with `subject` and `verdict`."""
        params = {"subjects": list(subjects), "since": since, "before": before}
        return list((await self._core(SUCCESSES_SINCE[inclusive], params)).all())

    async def last_trusted_before(self, subject: str, before: datetime) -> Any:
        """The subject's latest success that proved its place, strictly before `before`."""
        query = (
            select(*FACTS)
            .where(LoginEvent.subject == subject, TRUSTED, LoginEvent.occurred_at < before)
            .order_by(LoginEvent.occurred_at.desc(), LoginEvent.id.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).first()

    async def following(self, event: LoginEvent, limit: int) -> list[LoginEvent]:
        """Up to `limit` events of the subject after `event`, in event order."""
        query = (
            select(LoginEvent)
            .where(LoginEvent.subject == event.subject, _after(event))
            .order_by(LoginEvent.occurred_at, LoginEvent.id)
            .limit(limit)
        )
        return list((await self.session.scalars(query)).all())

    async def tail_facts(self, subjects: Collection[str], since: datetime) -> list[Any]:
        """The grading facts, subject and verdict of every event of these subjects at or after
        `since`: plain rows, not ORM objects (a bulk batch reads thousands)."""
        params = {"subjects": list(subjects), "since": since}
        return list((await self._core(TAIL_FACTS, params)).all())

    async def set_verdict(
        self, event_id: int, verdict: str, reasons: dict[str, Any] | None
    ) -> None:
        await self.session.execute(
            update(LoginEvent)
            .where(LoginEvent.id == event_id)
            .values(verdict=verdict, verdict_reasons=reasons)
            .execution_options(synchronize_session=False)
        )

    async def history(
        self, user_id: uuid.UUID, before_id: int | None, limit: int
    ) -> Sequence[LoginEvent]:
        query = select(LoginEvent).where(LoginEvent.user_id == user_id)
        if before_id is not None:
            query = query.where(LoginEvent.id < before_id)
        query = query.order_by(LoginEvent.id.desc()).limit(limit)
        return (await self.session.scalars(query)).all()

    async def purge_profiles_batch(self, cutoff: datetime, batch: int) -> int:
        """Delete at most `batch` login profiles whose newest event is older than `cutoff`:
        everything they describe has been purged, so they go too."""
        doomed = (
            select(LoginProfile.subject)
            .where(LoginProfile.last_at < cutoff)
            .order_by(LoginProfile.last_at)
            .limit(batch)
        )
        result = await self.session.execute(
            delete(LoginProfile).where(LoginProfile.subject.in_(doomed))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def purge_batch(self, cutoff: datetime, batch: int) -> int:
        """Delete at most `batch` events older than `cutoff`: small transactions keep the
        table available (one big DELETE locked Keycloak's event table for minutes)."""
        doomed = (
            select(LoginEvent.id)
            .where(LoginEvent.occurred_at < cutoff)
            .order_by(LoginEvent.id)
            .limit(batch)
        )
        result = await self.session.execute(delete(LoginEvent).where(LoginEvent.id.in_(doomed)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
