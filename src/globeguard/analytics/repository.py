"""Every SQL statement of the analytics rollups: the upserts that keep them current, the
reads that answer requests, and the purge that ages them out. Tested on SQLite and
PostgreSQL; the only dialect difference is which `insert` construct spells ON CONFLICT.

Each count row has a count column per (outcome, verdict) (`models.COUNT_COLUMNS`): a read
adds up the columns its outcome and verdict filters select (`_events`). Counts only ever
change by adding (negative amounts retract): rows whose counts reach 0 are left in place and
ignored by every read (selected counts > 0), and retention sweeps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.analytics.facts import Tallies
from globeguard.analytics.grid import (
    FINEST_EXPONENT,
    ROW_STRIDE,
    BBox,
    Grid,
    wrap_longitude,
)
from globeguard.analytics.models import (
    COUNT_COLUMNS,
    COUNTS,
    DIMENSIONS,
    GeoFlaggedJourney,
    GeoLastLogin,
    GeoPlace,
    GeoRollupDay,
    GeoRollupTotal,
    GeoSubjectDay,
    GeoSubjectTotal,
)
from globeguard.analytics.params import Filters
from globeguard.identity.models import User
from globeguard.travel.models import LoginEvent

DAY = cast(Table, GeoRollupDay.__table__)
TOTAL = cast(Table, GeoRollupTotal.__table__)
SUBJECT = cast(Table, GeoSubjectDay.__table__)
SUBJECT_TOTAL = cast(Table, GeoSubjectTotal.__table__)
# Primary keys of the count tables.
DAY_KEY = ("dim", "day", "key")
TOTAL_KEY = ("dim", "key")
SUBJECT_DAY_KEY = ("subject", "day", "cell", "country_id", "region_id", "city_id")
SUBJECT_PLACE = ("subject", "cell", "country_id", "region_id", "city_id")
# Set by the first insert of a per-subject row, never by the upsert's update.
OWNER = ("user_id",)
LAST = cast(Table, GeoLastLogin.__table__)
FLAGGED = cast(Table, GeoFlaggedJourney.__table__)
PLACE = cast(Table, GeoPlace.__table__)
# Rows per statement: far below SQLite's 32766 bound parameters with up to 17 columns a row.
CHUNK = 1000

Cell = tuple[int, int, int]
# Any SELECT, whatever its columns.
AnySelect = Select[*tuple[Any, ...]]


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _insert(self, table: Table) -> Any:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def _add(
        self,
        table: Table,
        keys: tuple[str, ...],
        values: list[tuple[Any, ...]],
        carried: tuple[str, ...] = (),
    ) -> None:
        """INSERT … ON CONFLICT (keys) DO UPDATE SET each count = itself + the new amount.
        Each value tuple is the keys, the `carried` columns (written by the insert only),
        then the `COUNTS`.

        Rollups take about a dozen upserts per event, so these go to the driver as tuples
        already in its types (`_day`, `_uuid`): SQLAlchemy's per-row parameter processing, or
        even a per-value conversion, cost more than SQLite's own work."""
        if not values:
            return
        sql = _upsert_sql(table.name, (*keys, *carried, *COUNTS), keys, self._dialect)
        connection = await self.session.connection()
        for start in range(0, len(values), CHUNK):
            await connection.exec_driver_sql(sql, values[start : start + CHUNK])  # type: ignore[arg-type]

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

    async def add_counts(self, counts: Tallies, users: Mapping[str, uuid.UUID]) -> None:
        """Add the tallies to the four count tables; `users` gives the owner of the subjects
        that are Globeguard users."""
        days = self._day_values(k[0] for k in counts.days)
        day_rows = [(dim, days[d], key, *n) for (d, dim, key), n in counts.days.items()]
        await self._add(DAY, DAY_KEY, day_rows)
        await self._add(TOTAL, TOTAL_KEY, [(*k, *n) for k, n in counts.totals.items()])
        days = self._day_values(k[1] for k in counts.subject_days)
        owners = {s: self._uuid_value(u) for s, u in users.items()}
        rows = [
            (subject, days[d], *place, owners.get(subject), *n)
            for (subject, d, *place), n in counts.subject_days.items()
        ]
        await self._add(SUBJECT, SUBJECT_DAY_KEY, rows, OWNER)
        total_rows = [(*k, owners.get(k[0]), *n) for k, n in counts.subject_totals.items()]
        await self._add(SUBJECT_TOTAL, SUBJECT_PLACE, total_rows, OWNER)

    async def note_places(self, places: list[dict[str, Any]]) -> None:
        """Labels and positions of places, and when each was last seen."""
        if not places:
            return
        statement = self._insert(PLACE)
        statement = statement.on_conflict_do_update(
            index_elements=["dim", "geoname_id"],
            set_={"last_seen_at": func.max(PLACE.c.last_seen_at, statement.excluded.last_seen_at)}
            if self.session.get_bind().dialect.name == "sqlite"
            else {
                "last_seen_at": func.greatest(PLACE.c.last_seen_at, statement.excluded.last_seen_at)
            },
        )
        for start in range(0, len(places), CHUNK):
            await self.session.execute(statement, places[start : start + CHUNK])

    async def note_last_logins(self, rows: list[dict[str, Any]]) -> None:
        """Each subject's latest successful located sign-in: a row replaces the stored one
        only if it is not older."""
        if not rows:
            return
        statement = self._insert(LAST)
        columns = [c for c in rows[0] if c != "subject"]
        statement = statement.on_conflict_do_update(
            index_elements=["subject"],
            set_={c: statement.excluded[c] for c in columns},
            where=statement.excluded.occurred_at >= LAST.c.occurred_at,
        )
        for start in range(0, len(rows), CHUNK):
            await self.session.execute(statement, rows[start : start + CHUNK])

    async def set_last_login_verdicts(self, verdicts: Mapping[str, str]) -> None:
        for event_uuid, verdict in verdicts.items():
            await self.session.execute(
                update(LAST).where(LAST.c.event_uuid == event_uuid).values(verdict=verdict)
            )

    async def note_flagged(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        statement = self._insert(FLAGGED)
        columns = [c for c in rows[0] if c != "event_uuid"]
        statement = statement.on_conflict_do_update(
            index_elements=["event_uuid"], set_={c: statement.excluded[c] for c in columns}
        )
        for start in range(0, len(rows), CHUNK):
            await self.session.execute(statement, rows[start : start + CHUNK])

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

    # --- reads ----------------------------------------------------------------------------

    async def stored_days(self, dim: int) -> tuple[date | None, date | None]:
        """The first and last day with counts in a dimension (two seeks on the key)."""
        first = await self.session.scalar(select(func.min(DAY.c.day)).where(DAY.c.dim == dim))
        last = await self.session.scalar(select(func.max(DAY.c.day)).where(DAY.c.dim == dim))
        return first, last

    async def heatmap_cells(self, grid: Grid, filters: Filters) -> list[Cell]:
        """Event counts per cell from the global rollups."""
        table = DAY if filters.bounded else TOTAL
        factor = grid.factor
        row = table.c.key // ROW_STRIDE // factor
        column = (table.c.key % ROW_STRIDE) // factor
        events = func.sum(_events(table, filters))
        query = (
            select(row, column, events)
            .where(table.c.dim == grid.level, _in_box(table.c.key, grid, grid.stored_exponent))
            .group_by(row, column)
            .having(events > 0)
        )
        if filters.bounded:
            query = _days(query, table.c.day, filters)
        return await self._cells(query, grid)

    async def heatmap_subject_cells(
        self, grid: Grid, filters: Filters, users: ColumnElement[bool] | None, distinct: bool
    ) -> list[Cell]:
        """Counts per cell from the per-subject rollups: events, or distinct subjects."""
        table = SUBJECT if filters.bounded else SUBJECT_TOTAL
        factor = grid.finest_factor()
        row = table.c.cell // ROW_STRIDE // factor
        column = (table.c.cell % ROW_STRIDE) // factor
        events = _events(table, filters)
        weight = func.count(table.c.subject.distinct()) if distinct else func.sum(events)
        query = (
            select(row, column, weight)
            .where(table.c.cell >= 0, events > 0)
            .where(_in_box(table.c.cell, grid, FINEST_EXPONENT))
            .group_by(row, column)
        )
        if filters.bounded:
            query = _days(query, table.c.day, filters)
        return await self._cells(_for_users(query, table, users), grid)

    async def heatmap_last_login_cells(
        self, grid: Grid, filters: Filters, users: ColumnElement[bool] | None
    ) -> list[Cell]:
        factor = grid.finest_factor()
        row = LAST.c.cell // ROW_STRIDE // factor
        column = (LAST.c.cell % ROW_STRIDE) // factor
        query = (
            select(row, column, func.count())
            .where(_in_box(LAST.c.cell, grid, FINEST_EXPONENT))
            .group_by(row, column)
        )
        if filters.verdicts is not None:
            query = query.where(LAST.c.verdict.in_(filters.verdicts))
        query = _days(query, LAST.c.day, filters)
        return await self._cells(_for_users(query, LAST, users), grid)

    async def _cells(self, query: AnySelect, grid: Grid) -> list[Cell]:
        return [(int(r[0]), int(r[1]), int(r[2])) for r in await self.session.execute(query)]

    async def top_places(
        self, dim: int, filters: Filters, limit: int, bbox: BBox | None
    ) -> list[dict[str, Any]]:
        table = DAY if filters.bounded else TOTAL
        count = func.sum(_events(table, filters)).label("count")
        query = (
            select(table.c.key.label("geoname_id"), count)
            .where(table.c.dim == dim)
            .group_by(table.c.key)
            .having(count > 0)
        )
        if filters.bounded:
            query = _days(query, table.c.day, filters)
        return await self._labelled(query, dim, table.c.key, limit, bbox)

    async def place_total(self, dim: int, filters: Filters) -> int:
        table = DAY if filters.bounded else TOTAL
        events = func.sum(_events(table, filters))
        query = select(func.coalesce(events, 0)).where(table.c.dim == dim)
        if filters.bounded:
            query = _days(query, table.c.day, filters)
        return int(await self.session.scalar(query) or 0)

    async def top_subject_places(
        self,
        column_name: str,
        dim: int,
        filters: Filters,
        users: ColumnElement[bool] | None,
        distinct: bool,
        limit: int,
        bbox: BBox | None,
    ) -> list[dict[str, Any]]:
        table = SUBJECT if filters.bounded else SUBJECT_TOTAL
        place = table.c[column_name]
        events = _events(table, filters)
        count = (func.count(table.c.subject.distinct()) if distinct else func.sum(events)).label(
            "count"
        )
        query = (
            select(place.label("geoname_id"), count).where(place != 0, events > 0).group_by(place)
        )
        if filters.bounded:
            query = _days(query, table.c.day, filters)
        return await self._labelled(_for_users(query, table, users), dim, place, limit, bbox)

    async def subject_place_total(
        self, column_name: str, filters: Filters, users: ColumnElement[bool] | None, distinct: bool
    ) -> int:
        table = SUBJECT if filters.bounded else SUBJECT_TOTAL
        place = table.c[column_name]
        events = _events(table, filters)
        count = func.count(table.c.subject.distinct()) if distinct else func.sum(events)
        query = select(func.coalesce(count, 0)).where(place != 0, events > 0)
        if filters.bounded:
            query = _days(query, table.c.day, filters)
        return int(await self.session.scalar(_for_users(query, table, users)) or 0)

    async def subject_days(self) -> tuple[date | None, date | None]:
        first = await self.session.scalar(select(func.min(SUBJECT.c.day)))
        last = await self.session.scalar(select(func.max(SUBJECT.c.day)))
        return first, last

    async def top_last_login_places(
        self,
        column_name: str,
        dim: int,
        filters: Filters,
        users: ColumnElement[bool] | None,
        limit: int,
        bbox: BBox | None,
    ) -> list[dict[str, Any]]:
        place = LAST.c[column_name]
        count = func.count().label("count")
        query = select(place.label("geoname_id"), count).where(place != 0).group_by(place)
        query = _days(_last_verdicts(query, filters), LAST.c.day, filters)
        return await self._labelled(_for_users(query, LAST, users), dim, place, limit, bbox)

    async def last_login_total(
        self, column_name: str, filters: Filters, users: ColumnElement[bool] | None
    ) -> int:
        query = select(func.count()).where(LAST.c[column_name] != 0)
        query = _days(_last_verdicts(query, filters), LAST.c.day, filters)
        return int(await self.session.scalar(_for_users(query, LAST, users)) or 0)

    async def _labelled(
        self, query: AnySelect, dim: int, key: Any, limit: int, bbox: BBox | None
    ) -> list[dict[str, Any]]:
        """The top `limit` counts with their places' labels. Without a box the top is cut
        before the join, so the labels are looked up `limit` times whatever the plan."""
        counted = query.subquery()
        if bbox is None:
            counted = (
                select(counted)
                .order_by(counted.c.count.desc(), counted.c.geoname_id)
                .limit(limit)
                .subquery()
            )
        labelled = (
            select(
                counted.c.geoname_id,
                counted.c.count,
                PLACE.c.country_iso,
                PLACE.c.subdivision_iso,
                PLACE.c.city_name,
                PLACE.c.latitude,
                PLACE.c.longitude,
                PLACE.c.last_seen_at,
            )
            .select_from(counted)
            .outerjoin(PLACE, and_(PLACE.c.dim == dim, PLACE.c.geoname_id == counted.c.geoname_id))
            .order_by(counted.c.count.desc(), counted.c.geoname_id)
            .limit(limit)
        )
        if bbox is not None:
            labelled = labelled.where(_place_in_box(bbox))
        return [dict(r._mapping) for r in await self.session.execute(labelled)]

    async def journeys(
        self, filters: Filters, users: ColumnElement[bool] | None, limit: int
    ) -> Sequence[Any]:
        query = select(FLAGGED).order_by(FLAGGED.c.occurred_at.desc()).limit(limit)
        if filters.first is not None:
            query = query.where(FLAGGED.c.occurred_at >= _start_of(filters.first))
        if filters.last is not None:
            query = query.where(FLAGGED.c.occurred_at < _start_of(filters.last, 1))
        if filters.verdicts is not None:
            query = query.where(FLAGGED.c.verdict.in_(filters.verdicts))
        if len(filters.successes) == 1:
            query = query.where(FLAGGED.c.success == filters.successes[0])
        return (await self.session.execute(_for_users(query, FLAGGED, users))).all()


@lru_cache(maxsize=32)
def _upsert_sql(table: str, columns: Sequence[str], keys: Sequence[str], dialect: str) -> str:
    """Column and table names are ours, never input."""
    if dialect == "postgresql":
        marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    else:
        marks = ", ".join("?" for _ in columns)
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTS)
    # Names come from our models, values are bound.
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    )


def _start_of(day: date, plus_days: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=plus_days)


def _counts(table: Table) -> list[Column[int]]:
    return [table.c[name] for name in COUNTS]


def _events(table: Table, filters: Filters) -> ColumnElement[int]:
    """A row's events of the outcomes and verdicts the filters keep: the sum of their count
    columns. Filters keeping none (the API always keeps a verdict) give 0: every read then
    answers nothing."""
    kept = [
        table.c[name]
        for success, verdict, name in COUNT_COLUMNS
        if success in filters.successes
        and (filters.verdicts is None or verdict in filters.verdicts)
    ]
    if not kept:
        return literal_column("0", Integer)
    events: ColumnElement[int] = kept[0]
    for column in kept[1:]:
        events = events + column
    return events


def _retractions(
    rows: Iterable[Sequence[Any]], width: int, carried: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Rows of `width` key columns then the counts, as `_add` values that take the counts
    back (rows with nothing to take back left out)."""
    return [(*r[:width], *carried, *(-n for n in r[width:])) for r in rows if any(r[width:])]


def _last_verdicts(query: AnySelect, filters: Filters) -> AnySelect:
    if filters.verdicts is not None:
        query = query.where(LAST.c.verdict.in_(filters.verdicts))
    return query


def _days(query: AnySelect, day: Any, filters: Filters) -> AnySelect:
    if filters.first is not None:
        query = query.where(day >= filters.first)
    if filters.last is not None:
        query = query.where(day <= filters.last)
    return query


def _for_users(query: AnySelect, table: Table, users: ColumnElement[bool] | None) -> AnySelect:
    """Only the subjects that are users matching a search: joined through the user ids the
    rollups carry, so the search runs once over `user`, with its own indexes."""
    if users is None:
        return query
    return query.where(table.c.user_id.in_(select(User.id).where(users)))


def _in_box(key: Any, grid: Grid, exponent: int) -> ColumnElement[bool]:
    """Packed cells (at size 2^exponent) inside the grid's box: a key range for the rows,
    then the column ranges."""
    if grid.bbox.whole_width and grid.bbox.lat_span >= 180.0:
        return literal(True)
    low, high = grid.row_range(exponent)
    column = key % ROW_STRIDE
    columns = [column.between(a, b) for a, b in grid.column_ranges(exponent)]
    return and_(key.between(low * ROW_STRIDE, high * ROW_STRIDE + ROW_STRIDE - 1), or_(*columns))


def _place_in_box(bbox: BBox) -> ColumnElement[bool]:
    lat = PLACE.c.latitude.between(bbox.south, bbox.north)
    if bbox.whole_width:
        return lat
    west, east = wrap_longitude(bbox.west), wrap_longitude(bbox.east)
    if west <= east:
        return and_(lat, PLACE.c.longitude.between(west, east))
    return and_(lat, or_(PLACE.c.longitude >= west, PLACE.c.longitude <= east))
