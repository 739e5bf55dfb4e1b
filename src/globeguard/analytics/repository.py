"""Every SQL statement of the analytics rollups: the upserts that keep them current, the
reads that answer requests, and the purge that ages them out. Tested on SQLite and
PostgreSQL; the only dialect difference is which `insert` construct spells ON CONFLICT.

Counts only ever change by adding (negative amounts retract): rows that reach 0 are left in
place and ignored by every read (`events > 0`), and retention sweeps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.analytics.facts import DayKey, SubjectKey
from globeguard.analytics.grid import (
    FINEST_EXPONENT,
    ROW_STRIDE,
    BBox,
    Grid,
    wrap_longitude,
)
from globeguard.analytics.models import (
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
SUBJECT_PLACE = ("subject", "cell", "country_id", "region_id", "city_id", "success", "verdict")
LAST = cast(Table, GeoLastLogin.__table__)
FLAGGED = cast(Table, GeoFlaggedJourney.__table__)
PLACE = cast(Table, GeoPlace.__table__)
# Rows per statement: far below SQLite's 32766 bound parameters with 9 columns a row.
CHUNK = 2000

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
        columns: tuple[str, ...],
        keys: tuple[str, ...],
        values: list[tuple[Any, ...]],
    ) -> None:
        """INSERT … ON CONFLICT (keys) DO UPDATE SET events = events + the new amount.

        Rollups take about a dozen upserts per event, so these go to the driver as tuples
        already in its types (`_day`, `_uuid`): SQLAlchemy's per-row parameter processing, or
        even a per-value conversion, cost more than SQLite's own work."""
        if not values:
            return
        sql = _upsert_sql(table.name, columns, keys, self._dialect)
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

    async def add_day_counts(self, counts: Mapping[DayKey, int]) -> None:
        days = self._day_values(k[0] for k in counts)
        day_rows = [(dim, days[d], key, ok, v, n) for (d, dim, key, ok, v), n in counts.items()]
        day_keys = ("dim", "day", "key", "success", "verdict")
        await self._add(DAY, (*day_keys, "events"), day_keys, day_rows)
        totals: dict[tuple[int, int, bool, str], int] = {}
        for (_, dim, key, ok, v), n in counts.items():
            totals[(dim, key, ok, v)] = totals.get((dim, key, ok, v), 0) + n
        total_rows = [(*k, n) for k, n in totals.items() if n]
        keys = ("dim", "key", "success", "verdict")
        await self._add(TOTAL, (*keys, "events"), keys, total_rows)

    async def add_subject_counts(
        self, counts: Mapping[SubjectKey, int], users: Mapping[str, uuid.UUID]
    ) -> None:
        days = self._day_values(k[1] for k in counts)
        owners = {s: self._uuid_value(u) for s, u in users.items()}
        rows = [
            (subject, days[d], cell, country, region, city, ok, v, owners.get(subject), n)
            for (subject, d, cell, country, region, city, ok, v), n in counts.items()
        ]
        keys = ("subject", "day", "cell", "country_id", "region_id", "city_id", "success")
        await self._add(SUBJECT, (*keys, "verdict", "user_id", "events"), (*keys, "verdict"), rows)
        totals: dict[tuple[Any, ...], int] = {}
        for (subject, _, *place), n in counts.items():
            key = (subject, *place)
            totals[key] = totals.get(key, 0) + n
        total_rows = [(*k, owners.get(k[0]), n) for k, n in totals.items() if n]
        await self._add(
            SUBJECT_TOTAL, (*SUBJECT_PLACE, "user_id", "events"), SUBJECT_PLACE, total_rows
        )

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
                select(DAY.c.dim, DAY.c.key, DAY.c.success, DAY.c.verdict, DAY.c.events).where(
                    DAY.c.dim.in_(DIMENSIONS), DAY.c.day == day, DAY.c.events != 0
                )
            )
        ).all()
        keys = ("dim", "key", "success", "verdict")
        retracted = [(r.dim, r.key, r.success, r.verdict, -r.events) for r in rows]
        await self._add(TOTAL, (*keys, "events"), keys, retracted)
        result = await self.session.execute(
            delete(DAY).where(DAY.c.dim.in_(DIMENSIONS), DAY.c.day == day)
        )
        await self._retire_subject_day(day)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def _retire_subject_day(self, day: date) -> None:
        place = [SUBJECT.c[c] for c in SUBJECT_PLACE]
        rows = (
            await self.session.execute(
                select(*place, SUBJECT.c.events).where(SUBJECT.c.day == day, SUBJECT.c.events != 0)
            )
        ).all()
        retracted = [(*r[:-1], None, -r[-1]) for r in rows]
        columns = (*SUBJECT_PLACE, "user_id", "events")
        await self._add(SUBJECT_TOTAL, columns, SUBJECT_PLACE, retracted)
        await self.session.execute(delete(SUBJECT).where(SUBJECT.c.day == day))

    async def purge_before(self, cutoff: date, instant: datetime) -> None:
        """Last logins and journeys older than the retention, and counts that went back to
        0 (the day rollups go a day at a time, through `retire_day`)."""
        await self.session.execute(delete(LAST).where(LAST.c.day < cutoff))
        await self.session.execute(delete(FLAGGED).where(FLAGGED.c.occurred_at < instant))
        await self.session.execute(delete(TOTAL).where(TOTAL.c.events == 0))
        await self.session.execute(delete(SUBJECT).where(SUBJECT.c.events == 0))
        await self.session.execute(delete(SUBJECT_TOTAL).where(SUBJECT_TOTAL.c.events == 0))

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
        query = (
            select(row, column, func.sum(table.c.events))
            .where(table.c.dim == grid.level, _in_box(table.c.key, grid, grid.stored_exponent))
            .group_by(row, column)
            .having(func.sum(table.c.events) > 0)
        )
        query = _outcome_verdict(query, table, filters)
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
        weight = func.count(table.c.subject.distinct()) if distinct else func.sum(table.c.events)
        query = (
            select(row, column, weight)
            .where(table.c.cell >= 0, table.c.events > 0)
            .where(_in_box(table.c.cell, grid, FINEST_EXPONENT))
            .group_by(row, column)
        )
        query = _outcome_verdict(query, table, filters)
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
        count = func.sum(table.c.events).label("count")
        query = (
            select(table.c.key.label("geoname_id"), count)
            .where(table.c.dim == dim)
            .group_by(table.c.key)
            .having(count > 0)
        )
        query = _outcome_verdict(query, table, filters)
        if filters.bounded:
            query = _days(query, table.c.day, filters)
        return await self._labelled(query, dim, table.c.key, limit, bbox)

    async def place_total(self, dim: int, filters: Filters) -> int:
        table = DAY if filters.bounded else TOTAL
        query = select(func.coalesce(func.sum(table.c.events), 0)).where(table.c.dim == dim)
        query = _outcome_verdict(query, table, filters)
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
        count = (
            func.count(table.c.subject.distinct()) if distinct else func.sum(table.c.events)
        ).label("count")
        query = (
            select(place.label("geoname_id"), count)
            .where(place != 0, table.c.events > 0)
            .group_by(place)
        )
        query = _outcome_verdict(query, table, filters)
        if filters.bounded:
            query = _days(query, table.c.day, filters)
        return await self._labelled(_for_users(query, table, users), dim, place, limit, bbox)

    async def subject_place_total(
        self, column_name: str, filters: Filters, users: ColumnElement[bool] | None, distinct: bool
    ) -> int:
        table = SUBJECT if filters.bounded else SUBJECT_TOTAL
        place = table.c[column_name]
        count = func.count(table.c.subject.distinct()) if distinct else func.sum(table.c.events)
        query = select(func.coalesce(count, 0)).where(place != 0, table.c.events > 0)
        query = _outcome_verdict(query, table, filters)
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
    # Names come from our models, values are bound.
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET events = {table}.events + excluded.events"
    )


def _start_of(day: date, plus_days: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=plus_days)


def _outcome_verdict(query: AnySelect, table: Table, filters: Filters) -> AnySelect:
    if len(filters.successes) == 1:
        query = query.where(table.c.success == filters.successes[0])
    if filters.verdicts is not None:
        query = query.where(table.c.verdict.in_(filters.verdicts))
    return query


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
