"""Answers to the analytics endpoints, from the rollups (see `rollups` and `models`).

Which rollup answers a request, and what it costs:

- events, no user query: `geo_rollup_total` (no time range) or `geo_rollup_day`, one row per
  (cell or place[, day]), whose count columns an outcome or verdict filter picks from: the
  read grows with the cells in view and the days in range, never with the number of events.
- `by=users` or `q=`: `geo_subject_total` (no time range) or `geo_subject_day`, one row per
  (subject, [day,] place).
  A search first selects the matching users once (`q=` is the user search language, compiled
  for SQLite JSON1 or PostgreSQL JSONB), and only their rows are read, through the
  (user_id, day) index. A user signing in fifty times a day from home is one row a day, so
  the read is bounded by matching users x places (x active days, for a time range), not by
  their events; and a
  search matching few users reads few rows. Distinct users cannot be summed across days or
  cells, which is why `by=users` needs this table even without a search.
- `basis=last_login`: `geo_last_login`, one row per subject (AuthGlobeTrek's view: each user
  once, where they last signed in successfully).

Events of subjects that are not Globeguard users (reported by other IdPs) are counted
everywhere except under a user query, which only users can match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.analytics.grid import cell_centre
from globeguard.analytics.models import CITY_DIM, COUNTRY_DIM, REGION_DIM
from globeguard.analytics.params import (
    Basis,
    Filters,
    HeatmapParams,
    JourneyParams,
    Measure,
    PlaceLevel,
    TopParams,
)
from globeguard.analytics.read_repository import AnalyticsReadRepository
from globeguard.analytics.schemas import (
    HeatmapRead,
    JourneyEnd,
    JourneyRead,
    JourneysRead,
    PlaceCount,
    TopLocationsRead,
)
from globeguard.identity.search import QueryError, compile_user_filter, parse
from globeguard.kit.errors import BadRequest
from globeguard.travel.flagged import JourneyEnds, LoginPlace, journey_ends

# Place level → (rollup dimension, column of the per-subject tables).
PLACE_LEVELS = {
    PlaceLevel.COUNTRY: (COUNTRY_DIM, "country_id"),
    PlaceLevel.REGION: (REGION_DIM, "region_id"),
    PlaceLevel.CITY: (CITY_DIM, "city_id"),
}


class AnalyticsService:
    async def heatmap(self, session: AsyncSession, params: HeatmapParams) -> HeatmapRead:
        repo = AnalyticsReadRepository(session)
        users = _user_filter(params.filters, _dialect(session))
        grid, filters = params.grid, params.filters
        if params.basis is Basis.LAST_LOGIN:
            raw = await repo.heatmap_last_login_cells(grid, filters, users)
        elif params.by is Measure.USERS or users is not None:
            filters = await _widened(repo, None, filters)
            raw = await repo.heatmap_subject_cells(grid, filters, users, params.by is Measure.USERS)
        else:
            raw = await repo.heatmap_cells(grid, await _widened(repo, grid.level, filters))
        cells = []
        for row, column, weight in raw:
            lat, lon = cell_centre(row, column, grid.exponent)
            cells.append((round(lat, 6), round(lon, 6), weight))
        return HeatmapRead(
            cells=cells,
            cell_deg=grid.cell_deg,
            by=_measure(params.basis, params.by),
            basis=params.basis.value,
            max_weight=max((c[2] for c in cells), default=0),
            total_weight=sum(c[2] for c in cells),
        )

    async def top_locations(self, session: AsyncSession, params: TopParams) -> TopLocationsRead:
        repo = AnalyticsReadRepository(session)
        users = _user_filter(params.filters, _dialect(session))
        dim, column = PLACE_LEVELS[params.level]
        filters, limit, bbox = params.filters, params.limit, params.bbox
        rows: Sequence[dict[str, Any]]
        if params.basis is Basis.LAST_LOGIN:
            rows = await repo.top_last_login_places(column, dim, filters, users, limit, bbox)
            total = await repo.last_login_total(column, filters, users)
        elif params.by is Measure.USERS or users is not None:
            distinct = params.by is Measure.USERS
            filters = await _widened(repo, None, filters)
            rows = await repo.top_subject_places(column, dim, filters, users, distinct, limit, bbox)
            total = await repo.subject_place_total(column, filters, users, distinct)
        else:
            filters = await _widened(repo, dim, filters)
            rows = await repo.top_places(dim, filters, limit, bbox)
            total = await repo.place_total(dim, filters)
        return TopLocationsRead(
            level=params.level.value,
            by=_measure(params.basis, params.by),
            basis=params.basis.value,
            total=total,
            items=[_place(params.level, row, total) for row in rows],
        )

    async def suspicious_travel(self, session: AsyncSession, params: JourneyParams) -> JourneysRead:
        repo = AnalyticsReadRepository(session)
        users = _user_filter(params.filters, _dialect(session))
        rows = await repo.journeys(params.filters, users, params.limit)
        ends = await journey_ends(session, [row.event_uuid for row in rows])
        return JourneysRead(items=[_journey(row, ends.get(row.event_uuid)) for row in rows])


async def _widened(repo: AnalyticsReadRepository, dim: int | None, filters: Filters) -> Filters:
    """A time range covering every stored day (e.g. "last 90 days" with 90 days kept) is
    answered from the all-days totals: one row per cell instead of one per cell and day.
    `dim` None: the per-subject rollups."""
    if not filters.bounded:
        return filters
    first, last = await (repo.subject_days() if dim is None else repo.stored_days(dim))
    if first is None or last is None:
        return filters
    if (filters.first or first) <= first and (filters.last or last) >= last:
        return replace(filters, first=None, last=None)
    return filters


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _user_filter(filters: Filters, dialect: str) -> ColumnElement[bool] | None:
    if filters.query is None:
        return None
    try:
        tree = parse(filters.query)
        return None if tree is None else compile_user_filter(tree, dialect)
    except QueryError as exc:
        raise BadRequest(
            f"q: {exc.message} (at position {exc.position})",
            code="invalid_query",
            position=exc.position,
            query=filters.query,
        ) from exc


def _measure(basis: Basis, by: Measure) -> str:
    # Each subject's last login is one per subject: events and users are the same count.
    return Measure.USERS.value if basis is Basis.LAST_LOGIN else by.value


def share(count: int, total: int) -> float:
    """Percent of the total to 2 decimals (AuthGlobeTrek's denominator: every place, not
    only the ones listed)."""
    return round(100.0 * count / total, 2) if total else 0.0


def _place(level: PlaceLevel, row: dict[str, Any], total: int) -> PlaceCount:
    return PlaceCount(
        geoname_id=row["geoname_id"],
        label=label(level, row),
        country_iso=row["country_iso"],
        subdivision_iso=row["subdivision_iso"] if level is not PlaceLevel.COUNTRY else None,
        subdivision_name=row["subdivision_name"] if level is not PlaceLevel.COUNTRY else None,
        city_name=row["city_name"] if level is PlaceLevel.CITY else None,
        lat=row["latitude"],
        lon=row["longitude"],
        count=int(row["count"]),
        share=share(int(row["count"]), total),
        last_seen_at=row["last_seen_at"],
    )


def label(level: PlaceLevel, row: dict[str, Any]) -> str:
    """A readable name: the city, its region and country codes; never the key."""
    country = row.get("country_iso") or "??"
    region = row.get("subdivision_iso")
    if level is PlaceLevel.COUNTRY:
        return country
    if level is PlaceLevel.REGION:
        return f"{country}-{region}" if region else f"{country} (region {row['geoname_id']})"
    city = row.get("city_name") or f"place {row['geoname_id']}"
    return ", ".join(p for p in (city, region, country) if p)


def _journey(row: Any, ends: JourneyEnds | None) -> JourneyRead:
    """A stored journey, its ends named from their logins (which know the region) where
    those are still stored, else from the names the journey row keeps. The coordinates are
    the journey's: those the verdict measured."""
    origin = ends.origin if ends else None
    destination = ends.destination if ends else None
    return JourneyRead(
        event_uuid=row.event_uuid,
        subject=row.subject,
        user_id=row.user_id,
        occurred_at=row.occurred_at,
        success=row.success,
        verdict=row.verdict,
        origin=_end(row.from_lat, row.from_lon, row.from_city, row.from_country, origin),
        destination=_end(row.to_lat, row.to_lon, row.to_city, row.to_country, destination),
        distance_km=row.distance_km,
        elapsed_seconds=row.elapsed_seconds,
        speed_mph=row.speed_mph,
    )


def _end(
    lat: float, lon: float, city: str | None, country: str | None, login: LoginPlace | None
) -> JourneyEnd:
    if login is None:
        return JourneyEnd(
            lat=lat,
            lon=lon,
            city_name=city,
            subdivision_iso=None,
            subdivision_name=None,
            country_iso=country,
        )
    return JourneyEnd(
        lat=lat,
        lon=lon,
        city_name=login.city_name,
        subdivision_iso=login.subdivision_iso,
        subdivision_name=login.subdivision_name,
        country_iso=login.country_iso,
    )
