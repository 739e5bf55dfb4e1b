"""Every SQL statement that reads the analytics rollups to answer requests: heatmap cells,
top places, totals and flagged journeys (the writes are in repository.py).

A read adds up the count columns its outcome and verdict filters select (`_events`), and
ignores rows whose selected counts are 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.analytics.grid import (
    FINEST_EXPONENT,
    ROW_STRIDE,
    BBox,
    Grid,
    wrap_longitude,
)
from globeguard.analytics.models import COUNT_COLUMNS
from globeguard.analytics.params import Filters
from globeguard.analytics.tables import DAY, FLAGGED, LAST, PLACE, SUBJECT, SUBJECT_TOTAL, TOTAL
from globeguard.identity.models import User

Cell = tuple[int, int, int]
# Any SELECT, whatever its columns.
AnySelect = Select[*tuple[Any, ...]]


class AnalyticsReadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
                PLACE.c.subdivision_name,
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


def _start_of(day: date, plus_days: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=plus_days)


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
