"""Every SQL statement that writes the analytics rollups: the upserts that keep them current
and the purge that ages them out (the reads are in read_repository.py). Tested on SQLite and
PostgreSQL; the only dialect difference is which `insert` construct spells ON CONFLICT.

Each count row has a count column per (outcome, verdict) (`models.COUNT_COLUMNS`). Counts only
ever change by adding (negative amounts retract): rows whose counts reach 0 are left in place
and ignored by every read (selected counts > 0), and retention sweeps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Column, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.analytics.facts import Tallies
from globeguard.analytics.models import COUNTS, DIMENSIONS
from globeguard.analytics.tables import DAY, FLAGGED, LAST, PLACE, SUBJECT, SUBJECT_TOTAL, TOTAL
from globeguard.db.bulk import DriverRows, Step, json_rows, json_rows_source, run_steps
from globeguard.identity.models import User
from globeguard.travel.models import LoginEvent

# Primary keys of the count tables.
DAY_KEY = ("dim", "day", "key")
TOTAL_KEY = ("dim", "key")
SUBJECT_DAY_KEY = ("subject", "day", "cell", "country_id", "region_id", "city_id")
SUBJECT_PLACE = ("subject", "cell", "country_id", "region_id", "city_id")
# Set by the first insert of a per-subject row, never by the upsert's update.
OWNER = ("user_id",)


def _dialect_insert(table: Table, dialect: Dialect) -> Any:
    return (postgresql.insert if dialect.name == "postgresql" else sqlite.insert)(table)


def _all_columns(table: Table, dialect: Dialect) -> Any:
    statement = _dialect_insert(table, dialect)
    return statement, statement.values(
        {c.name: bindparam(c.name, type_=c.type) for c in table.columns}
    )


def _places_upsert(dialect: Dialect) -> Any:
    """A stored place keeps its labels and position, except its region's name: the latest
    one given wins (a GeoIP update may rename a region), and a place stored without one is
    named by the next login that has it."""
    base, statement = _all_columns(PLACE, dialect)
    latest = base.excluded
    newest = func.max if dialect.name == "sqlite" else func.greatest
    return statement.on_conflict_do_update(
        index_elements=["dim", "geoname_id"],
        set_={
            "last_seen_at": newest(PLACE.c.last_seen_at, latest.last_seen_at),
            "subdivision_name": func.coalesce(latest.subdivision_name, PLACE.c.subdivision_name),
        },
    )


def _last_logins_upsert(dialect: Dialect) -> Any:
    """A row replaces the stored one only if it is not older."""
    base, statement = _all_columns(LAST, dialect)
    return statement.on_conflict_do_update(
        index_elements=["subject"],
        set_={c.name: base.excluded[c.name] for c in LAST.columns if c.name != "subject"},
        where=base.excluded.occurred_at >= LAST.c.occurred_at,
    )


def _flagged_upsert(dialect: Dialect) -> Any:
    base, statement = _all_columns(FLAGGED, dialect)
    return statement.on_conflict_do_update(
        index_elements=["event_uuid"],
        set_={c.name: base.excluded[c.name] for c in FLAGGED.columns if c.name != "event_uuid"},
    )


_POSTGRESQL = postgresql.dialect()

# Built once per dialect: building an upsert (its `excluded` alias, its cache key) cost more
# than running it for a `POST /v1/` group.
_PLACES = DriverRows(PLACE, _places_upsert)
_LAST_LOGINS = DriverRows(LAST, _last_logins_upsert)
_FLAGGED = DriverRows(FLAGGED, _flagged_upsert)


def _place_key(place: Mapping[str, Any]) -> tuple[int, int]:
    return place["dim"], place["geoname_id"]


def _subject_of(row: Mapping[str, Any]) -> str:
    return str(row["subject"])


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _dialect(self) -> str:
        return self._bind_dialect.name

    @property
    def _bind_dialect(self) -> Dialect:
        return self.session.get_bind().dialect

    def _add_step(
        self,
        table: Table,
        keys: tuple[str, ...],
        values: list[tuple[Any, ...]],
        carried: tuple[str, ...] = (),
    ) -> list[Step]:
        """INSERT … ON CONFLICT (keys) DO UPDATE SET each count = itself + the new amount.
        Each value tuple is the keys, the `carried` columns (written by the insert only),
        then the `COUNTS`; keys are unique among them.

        Rollups take about a dozen upserts per event, so these go to the driver as tuples
        already in its types (`_day`, `_uuid`): SQLAlchemy's per-row parameter processing, or
        even a per-value conversion, cost more than SQLite's own work. PostgreSQL takes the
        rows as one JSON text, in one execution (`json_rows_source`)."""
        if not values:
            return []
        # In key order (the keys lead each tuple and are unique): the upserts then walk the
        # clustered B-tree (SQLite's WITHOUT ROWID, PostgreSQL's primary key index) from one
        # page to the next instead of jumping about it.
        values = sorted(values)
        dialect = self._bind_dialect
        sql = _upsert_sql(table, (*keys, *carried, *COUNTS), keys, dialect.name)
        if dialect.name == "postgresql":
            return [(sql, (json_rows(values),), False)]
        return [(sql, values, True)]

    async def _add(
        self,
        table: Table,
        keys: tuple[str, ...],
        values: list[tuple[Any, ...]],
        carried: tuple[str, ...] = (),
    ) -> None:
        await run_steps(self.session, self._add_step(table, keys, values, carried))

    def _day_values(self, days: Iterable[date]) -> dict[date, Any]:
        """Each day as the driver binds it: ISO text on SQLite (SQLAlchemy's `Date` storage
        there), the date itself for asyncpg."""
        sqlite = self._dialect == "sqlite"
        return {d: d.isoformat() if sqlite else d for d in set(days)}

    def _uuid_value(self, value: uuid.UUID | None) -> Any:
        """32 hex digits on SQLite (SQLAlchemy's `Uuid` storage there); the uuid for asyncpg."""
        if value is None or self._dialect != "sqlite":
            return value
        return value.hex

    # --- keeping rollups current --------------------------------------------------------

    async def users_among(self, candidates: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        wanted = list(set(candidates))
        if not wanted:
            return set()
        found = await self.session.scalars(select(User.id).where(User.id.in_(wanted)))
        return set(found)

    async def note_batch(
        self,
        counts: Tallies,
        users: Mapping[str, uuid.UUID],
        places: list[dict[str, Any]],
        last_logins: list[dict[str, Any]],
        flagged: list[dict[str, Any]],
    ) -> None:
        """What a batch of new events adds (`add_counts`, `note_places`, `note_last_logins`,
        `note_flagged`), sent together: one hop to the SQLite writer, not seven."""
        dialect = self._bind_dialect
        steps = self._count_steps(counts, users)
        if places:
            steps.append(_PLACES.step(dialect, sorted(places, key=_place_key)))
        if last_logins:
            steps.append(_LAST_LOGINS.step(dialect, sorted(last_logins, key=_subject_of)))
        if flagged:
            steps.append(_FLAGGED.step(dialect, flagged))
        await run_steps(self.session, steps)

    async def add_counts(self, counts: Tallies, users: Mapping[str, uuid.UUID]) -> None:
        """Add the tallies to the four count tables; `users` gives the owner of the subjects
        that are Globeguard users."""
        await run_steps(self.session, self._count_steps(counts, users))

    def _count_steps(self, counts: Tallies, users: Mapping[str, uuid.UUID]) -> list[Step]:
        days = self._day_values(k[0] for k in counts.days)
        day_rows = [(dim, days[d], key, *n) for (d, dim, key), n in counts.days.items()]
        steps = self._add_step(DAY, DAY_KEY, day_rows)
        steps += self._add_step(TOTAL, TOTAL_KEY, [(*k, *n) for k, n in counts.totals.items()])
        days = self._day_values(k[1] for k in counts.subject_days)
        owners = {s: self._uuid_value(u) for s, u in users.items()}
        rows = [
            (subject, days[d], *place, owners.get(subject), *n)
            for (subject, d, *place), n in counts.subject_days.items()
        ]
        steps += self._add_step(SUBJECT, SUBJECT_DAY_KEY, rows, OWNER)
        total_rows = [(*k, owners.get(k[0]), *n) for k, n in counts.subject_totals.items()]
        steps += self._add_step(SUBJECT_TOTAL, SUBJECT_PLACE, total_rows, OWNER)
        return steps

    async def note_places(self, places: list[dict[str, Any]]) -> None:
        """Labels and positions of places, and when each was last seen (see
        `_places_upsert`); one row per place."""
        await _PLACES.run(self.session, places)

    async def note_last_logins(self, rows: list[dict[str, Any]]) -> None:
        """Each subject's latest successful located sign-in (one row per subject, every
        column): a row replaces the stored one only if it is not older."""
        await _LAST_LOGINS.run(self.session, rows)

    async def set_last_login_verdicts(self, verdicts: Mapping[str, str]) -> None:
        for event_uuid, verdict in verdicts.items():
            await self.session.execute(
                update(LAST).where(LAST.c.event_uuid == event_uuid).values(verdict=verdict)
            )

    async def forget_last_logins(self, event_uuids: Sequence[str]) -> None:
        """Drop the last-login rows that are these events (no longer successes)."""
        await self.session.execute(delete(LAST).where(LAST.c.event_uuid.in_(list(event_uuids))))

    async def latest_successes(self, subjects: Iterable[str]) -> list[Any]:
        """Each subject's latest successful located event, as a row of columns (none for a
        subject without one)."""
        table = cast(Table, LoginEvent.__table__)
        found: list[Any] = []
        for subject in sorted(subjects):  # a handful at most: one indexed lookup each
            query = (
                select(table)
                .where(table.c.subject == subject, table.c.success, table.c.located)
                .order_by(table.c.occurred_at.desc(), table.c.id.desc())
                .limit(1)
            )
            found += (await self.session.execute(query)).all()
        return found

    async def note_flagged(self, rows: list[dict[str, Any]]) -> None:
        """Flagged journeys (every column), one row per event."""
        await _FLAGGED.run(self.session, rows)

    async def unflag(self, event_uuids: Sequence[str]) -> None:
        if event_uuids:
            await self.session.execute(
                delete(FLAGGED).where(FLAGGED.c.event_uuid.in_(list(event_uuids)))
            )

    async def login_events(self, ids: Sequence[int]) -> Sequence[Any]:
        """Stored events by id, as rows of columns (read afresh: ORM objects the recording
        path loaded earlier in this transaction may predate its verdict updates)."""
        table = cast(Table, LoginEvent.__table__)
        return (await self.session.execute(select(table).where(table.c.id.in_(list(ids))))).all()

    # --- retention ----------------------------------------------------------------------

    async def oldest_day(self) -> date | None:
        """One index seek per dimension (the primary key leads with it)."""
        days = []
        for dim in DIMENSIONS:
            found = await self.session.scalar(select(func.min(DAY.c.day)).where(DAY.c.dim == dim))
            if found is not None:
                days.append(found)
        return min(days, default=None)

    async def retire_day(self, day: date) -> int:
        """Subtract one day from the totals, then delete its rows; returns the rows deleted."""
        rows = (
            await self.session.execute(
                select(DAY.c.dim, DAY.c.key, *_counts(DAY)).where(
                    DAY.c.dim.in_(DIMENSIONS), DAY.c.day == day
                )
            )
        ).all()
        await self._add(TOTAL, TOTAL_KEY, _retractions(rows, len(TOTAL_KEY)))
        result = await self.session.execute(
            delete(DAY).where(DAY.c.dim.in_(DIMENSIONS), DAY.c.day == day)
        )
        await self._retire_subject_day(day)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def _retire_subject_day(self, day: date) -> None:
        place = [SUBJECT.c[c] for c in SUBJECT_PLACE]
        rows = (
            await self.session.execute(
                select(*place, *_counts(SUBJECT)).where(SUBJECT.c.day == day)
            )
        ).all()
        # No owner: it is only written when a row is inserted, and the total row a
        # retraction applies to exists as long as any of its days does.
        retracted = _retractions(rows, len(SUBJECT_PLACE), (None,))
        await self._add(SUBJECT_TOTAL, SUBJECT_PLACE, retracted, OWNER)
        await self.session.execute(delete(SUBJECT).where(SUBJECT.c.day == day))

    async def purge_before(self, cutoff: date, instant: datetime) -> None:
        """Last logins and journeys older than the retention, and counts that went back to
        0 (the day rollups go a day at a time, through `retire_day`)."""
        await self.session.execute(delete(LAST).where(LAST.c.day < cutoff))
        await self.session.execute(delete(FLAGGED).where(FLAGGED.c.occurred_at < instant))
        for table in (TOTAL, SUBJECT, SUBJECT_TOTAL):
            await self.session.execute(delete(table).where(*(c == 0 for c in _counts(table))))


@lru_cache(maxsize=32)
def _upsert_sql(table: Table, columns: Sequence[str], keys: Sequence[str], dialect: str) -> str:
    """Column and table names are ours, never input. PostgreSQL reads the rows as one JSON
    text (`json_rows_source`): one execution for the lot, where an executemany runs row
    after row."""
    name = table.name
    if dialect == "postgresql":
        source = json_rows_source(table, columns, _POSTGRESQL)
    else:
        source = f"VALUES ({', '.join('?' for _ in columns)})"
    added = ", ".join(f"{c} = {name}.{c} + excluded.{c}" for c in COUNTS)
    # Names come from our models, values are bound.
    return (
        f"INSERT INTO {name} ({', '.join(columns)}) {source} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    )


def _counts(table: Table) -> list[Column[int]]:
    return [table.c[name] for name in COUNTS]


def _retractions(
    rows: Iterable[Sequence[Any]], width: int, carried: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Rows of `width` key columns then the counts, as `_add` values that take the counts
    back (rows with nothing to take back left out)."""
    return [(*r[:width], *carried, *(-n for n in r[width:])) for r in rows if any(r[width:])]
