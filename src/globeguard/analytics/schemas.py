"""Response bodies of the analytics endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from globeguard.travel.flagged import REGION_NAME


class HeatmapRead(BaseModel):
    cells: list[tuple[float, float, int]] = Field(
        description="[lat, lon, weight] at each non-empty cell's centre"
    )
    cell_deg: float = Field(description="side of a cell in degrees")
    by: str
    basis: str
    max_weight: int
    total_weight: int


class PlaceCount(BaseModel):
    geoname_id: int
    label: str = Field(
        description="the place in codes: Paris, IDF, FR (city), FR-IDF (region), FR (country)"
    )
    country_iso: str | None
    subdivision_iso: str | None = Field(
        description="region code, e.g. IDF, 13; null at the country level"
    )
    subdivision_name: str | None = Field(description=REGION_NAME)
    city_name: str | None
    lat: float | None
    lon: float | None
    count: int
    share: float = Field(description="percent of the total, 2 decimals")
    last_seen_at: datetime | None


class TopLocationsRead(BaseModel):
    level: str
    by: str
    basis: str
    total: int
    items: list[PlaceCount]


class JourneyEnd(BaseModel):
    lat: float
    lon: float
    city_name: str | None
    subdivision_iso: str | None = Field(description="region code, e.g. IDF, 13")
    subdivision_name: str | None = Field(description=REGION_NAME)
    country_iso: str | None


class JourneyRead(BaseModel):
    event_uuid: str
    subject: str
    user_id: uuid.UUID | None
    occurred_at: datetime
    success: bool
    verdict: str
    origin: JourneyEnd
    destination: JourneyEnd
    distance_km: float
    elapsed_seconds: float
    speed_mph: float


class JourneysRead(BaseModel):
    items: list[JourneyRead]
