"""Flagged sign-ins: the newest logins graded suspicious or impossible, each with the journey
that earned the grade, both ends named.

A verdict measures a journey from an anchor login (its event uuid is `verdict_reasons
["earlier"]`) to the flagged one. The flagged end is the login's own place; the anchor's is
read from the anchor's row, which knows its region, where the reasons keep only the city and
country. An anchor no longer stored (retention) falls back to the reasons' copy.

The analytics arcs name their ends the same way (`journey_ends`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.travel.detect import anchor_of
from globeguard.travel.flagged_repository import FlaggedRepository
from globeguard.travel.geo_math import KM_PER_MILE

# The description of every `subdivision_name` the API serves.
REGION_NAME = (
    "the region's English name, e.g. Île-de-France, Tokyo, from the GeoIP database; null "
    "where it is not known (a login stored before region names were, or a journey end known "
    "only from its verdict): show `subdivision_iso` then"
)


class LoginPlace(BaseModel):
    event_uuid: str | None = Field(description="the login located here, when still stored")
    lat: float
    lon: float
    accuracy_radius_km: float | None
    city_name: str | None
    subdivision_iso: str | None = Field(description="region code, e.g. IDF, 13")
    subdivision_name: str | None = Field(description=REGION_NAME)
    country_iso: str | None


class FlaggedLogin(BaseModel):
    id: int
    event_uuid: str
    occurred_at: datetime
    source: str
    subject: str
    user_id: uuid.UUID | None
    username: str | None
    success: bool
    verdict: str
    review: str | None = Field(description="an admin's review: safe | compromised")
    reviewed_at: datetime | None
    origin: LoginPlace | None = Field(description="where the journey started: the anchor login")
    destination: LoginPlace | None = Field(description="this login's place")
    distance_km: float | None
    elapsed_seconds: float | None
    speed_mph: float | None
    speed_kmh: float | None


class FlaggedPage(BaseModel):
    items: list[FlaggedLogin]
    next_before: int | None = Field(description="pass as `before` for the next page")


@dataclass(frozen=True, slots=True)
class JourneyEnds:
    origin: LoginPlace | None
    destination: LoginPlace | None


class FlaggedService:
    async def page(self, session: AsyncSession, before: int | None, limit: int) -> FlaggedPage:
        repo = FlaggedRepository(session)
        rows = await repo.page(before, limit)
        anchors = await repo.logins({a for r in rows if (a := anchor_of(r.verdict_reasons))})
        usernames = await repo.usernames({r.user_id for r in rows if r.user_id is not None})
        items = [_flagged(row, anchors, usernames) for row in rows]
        next_before = rows[-1].id if len(rows) == limit else None
        return FlaggedPage(items=items, next_before=next_before)


async def journey_ends(
    session: AsyncSession, event_uuids: Collection[str]
) -> dict[str, JourneyEnds]:
    """Both ends of the journeys ending at these logins, for those still stored."""
    repo = FlaggedRepository(session)
    logins = await repo.logins(event_uuids)
    anchors = await repo.logins(
        {a for row in logins.values() if (a := anchor_of(row.verdict_reasons))}
    )
    return {
        key: JourneyEnds(_origin(row.verdict_reasons, anchors), _own_place(row))
        for key, row in logins.items()
    }


def _flagged(
    row: Any, anchors: Mapping[str, Any], usernames: Mapping[uuid.UUID, str]
) -> FlaggedLogin:
    reasons = row.verdict_reasons or {}
    speed_mph = _number(reasons.get("speed_mph"))
    return FlaggedLogin(
        id=row.id,
        event_uuid=row.event_uuid,
        occurred_at=row.occurred_at,
        source=row.source,
        subject=row.subject,
        user_id=row.user_id,
        username=usernames.get(row.user_id) if row.user_id is not None else None,
        success=row.success,
        verdict=row.verdict,
        review=row.review,
        reviewed_at=row.reviewed_at,
        origin=_origin(reasons, anchors),
        destination=_own_place(row) or _reasons_place(None, reasons.get("destination")),
        distance_km=_number(reasons.get("distance_km")),
        elapsed_seconds=_number(reasons.get("elapsed_seconds")),
        speed_mph=speed_mph,
        speed_kmh=None if speed_mph is None else speed_mph * KM_PER_MILE,
    )


def _origin(reasons: Mapping[str, Any] | None, anchors: Mapping[str, Any]) -> LoginPlace | None:
    anchor = anchor_of(reasons)
    row = anchors.get(anchor) if anchor is not None else None
    found = _own_place(row) if row is not None else None
    return found or _reasons_place(anchor, (reasons or {}).get("origin"))


def _own_place(row: Any) -> LoginPlace | None:
    if row.latitude is None or row.longitude is None:
        return None
    return LoginPlace(
        event_uuid=row.event_uuid,
        lat=row.latitude,
        lon=row.longitude,
        accuracy_radius_km=row.accuracy_radius_km,
        city_name=row.city_name,
        subdivision_iso=row.subdivision_iso,
        subdivision_name=row.subdivision_name,
        country_iso=row.country_iso,
    )


def _reasons_place(event_uuid: str | None, place: Any) -> LoginPlace | None:
    """The copy of a place a verdict's reasons keep: coordinates, radius, city, country (no
    region: grading's places carry none)."""
    if not isinstance(place, Mapping) or _number(place.get("lat")) is None:
        return None
    if _number(place.get("lon")) is None:
        return None
    return LoginPlace(
        event_uuid=event_uuid,
        lat=place["lat"],
        lon=place["lon"],
        accuracy_radius_km=_number(place.get("radius_km")),
        city_name=place.get("city"),
        subdivision_iso=None,
        subdivision_name=None,
        country_iso=place.get("country"),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
