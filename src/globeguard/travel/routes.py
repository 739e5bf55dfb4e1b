"""Where sign-ins came from: a user's login history with its travel verdicts (every login
linked to the account, whichever IdP reported it), the logins reported under one subject,
and a lookup of what the GeoIP database says about one address."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from globeguard.adapters.geoip.port import GeoReason
from globeguard.identity.dependencies import ContainerDep, CurrentPrincipal, DbSession, require
from globeguard.identity.permissions import PROFILE_SCOPE, Permission
from globeguard.identity.principal import Principal
from globeguard.kit.errors import BadRequest, Forbidden
from globeguard.kit.limits import INT64_MAX
from globeguard.settings import LimitsSettings
from globeguard.travel.flagged import REGION_NAME
from globeguard.travel.ingest.events import SUBJECT_MAX
from globeguard.travel.models import LoginEvent

router = APIRouter(prefix="/api/v1", tags=["login intelligence"])

# The notices the data licences ask for: GeoLite2 (CC BY-SA 4.0) and DB-IP Lite (CC BY 4.0)
# must be credited wherever their data is shown.
GEOLITE2_NOTICE = (
    "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
)
GEOIP2_NOTICE = "GeoIP2 data by MaxMind, https://www.maxmind.com"
DBIP_NOTICE = "IP Geolocation by DB-IP, https://db-ip.com"


class GeoDatabase(BaseModel):
    type: str | None
    build_date: str | None


class GeoLookup(BaseModel):
    ip: str
    located: bool
    reason: str | None
    latitude: float | None
    longitude: float | None
    accuracy_radius_km: int | None
    country_iso: str | None
    country_name: str | None
    country_geoname_id: int | None
    subdivision_iso: str | None = Field(description="region code, e.g. IDF, 13")
    subdivision_name: str | None = Field(description="the region's English name, e.g. Tokyo")
    subdivision_geoname_id: int | None
    city_name: str | None
    city_geoname_id: int | None
    time_zone: str | None
    asn: int | None
    as_org: str | None
    attribution: str
    database: GeoDatabase


class PlaceRead(BaseModel):
    lat: float
    lon: float
    accuracy_radius_km: int | None
    country_iso: str | None
    country_geoname_id: int | None
    subdivision_iso: str | None = Field(description="region code, e.g. IDF, 13")
    subdivision_name: str | None = Field(description=REGION_NAME)
    city_name: str | None
    city_geoname_id: int | None
    time_zone: str | None


class LoginRead(BaseModel):
    id: int
    event_uuid: str
    occurred_at: datetime
    success: bool
    failure_reason: str | None
    ip: str | None
    user_agent: str | None
    source: str
    place: PlaceRead | None
    geo_reason: str | None
    verdict: str | None
    verdict_reasons: dict[str, Any] | None
    # An admin's word on the login ("safe" | "compromised") and when it was given.
    review: str | None
    reviewed_at: datetime | None


class LoginPage(BaseModel):
    items: list[LoginRead]
    next_before: int | None


def attribution(info: Mapping[str, Any]) -> str:
    """The credit the loaded database's licence asks for, from its `database_type`; any
    other database is named by its type."""
    kind = str(info.get("database_type") or "unknown GeoIP database")
    lowered = kind.lower()
    if "geolite2" in lowered:
        return GEOLITE2_NOTICE
    if "geoip2" in lowered:
        return GEOIP2_NOTICE
    if "dbip" in lowered or "db-ip" in lowered:
        return DBIP_NOTICE
    return kind


def _place(event: LoginEvent) -> PlaceRead | None:
    if not event.located or event.latitude is None or event.longitude is None:
        return None
    return PlaceRead(
        lat=event.latitude,
        lon=event.longitude,
        accuracy_radius_km=event.accuracy_radius_km,
        country_iso=event.country_iso,
        country_geoname_id=event.country_geoname_id,
        subdivision_iso=event.subdivision_iso,
        subdivision_name=event.subdivision_name,
        city_name=event.city_name,
        city_geoname_id=event.city_geoname_id,
        time_zone=event.time_zone,
    )


def login_read(event: LoginEvent) -> LoginRead:
    return LoginRead(
        id=event.id,
        event_uuid=event.event_uuid,
        occurred_at=event.occurred_at,
        success=event.success,
        failure_reason=event.failure_reason,
        ip=event.ip,
        user_agent=event.user_agent,
        source=event.source,
        place=_place(event),
        geo_reason=event.geo_reason,
        verdict=event.verdict,
        verdict_reasons=event.verdict_reasons,
        review=event.review,
        reviewed_at=event.reviewed_at,
    )


def _may_read_history(principal: Principal, user_id: uuid.UUID) -> None:
    """The account itself (with `profile`, so a key scoped to sending events cannot read
    where its owner signs in), or anyone allowed to read users."""
    own = principal.user_id == user_id and principal.has(PROFILE_SCOPE)
    if not own and not principal.has(Permission.USERS_READ):
        raise Forbidden(
            f"only the account itself or a holder of '{Permission.USERS_READ}' may read its "
            "sign-ins"
        )


# `:path` so that "1.2.3.0/24" reaches us and is answered 400 invalid_ip, not 404.
@router.get("/geo/{ip:path}", response_model=GeoLookup)
async def locate_ip(
    ip: str,
    app: ContainerDep,
    _: Annotated[Principal, Depends(require(Permission.USERS_READ))],
) -> GeoLookup:
    """What the GeoIP database says about one address. Private, reserved and unknown
    addresses are answered with `located: false` and the `reason`."""
    geo = app.locator.locate(ip)
    if geo.reason is GeoReason.INVALID:
        raise BadRequest(f"'{ip[:64]}' is not an IP address", code="invalid_ip")
    info = app.locator.describe()
    database = GeoDatabase(type=info.get("database_type"), build_date=info.get("build_date"))
    return GeoLookup(**asdict(geo), attribution=attribution(info), database=database)


@router.get("/users/{user_id}/logins", response_model=LoginPage)
async def user_logins(
    user_id: uuid.UUID,
    principal: CurrentPrincipal,
    app: ContainerDep,
    session: DbSession,
    before: Annotated[
        int | None,
        Query(ge=1, le=INT64_MAX, description="Return events older than this id (next_before)."),
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> LoginPage:
    """The account's sign-in attempts, newest first, with where they came from and the travel
    verdict each earned. Page on with `before=next_before`."""
    _may_read_history(principal, user_id)
    await app.users.get(session, user_id, include_deleted=True)
    size = _page_size(app.settings.limits, limit)
    return _page(await app.logins.history_of(session, user_id, before, size), size)


# `:path`, so that a subject with a "/" (sent as %2F) reaches us whole.
@router.get("/subjects/{subject:path}/logins", response_model=LoginPage)
async def subject_logins(
    subject: Annotated[str, Path(min_length=1, max_length=SUBJECT_MAX)],
    app: ContainerDep,
    session: DbSession,
    _: Annotated[Principal, Depends(require(Permission.USERS_READ))],
    before: Annotated[
        int | None,
        Query(ge=1, le=INT64_MAX, description="Return events older than this id (next_before)."),
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> LoginPage:
    """The logins reported under exactly this subject (as the sender spelled it, URL-encoded),
    linked to a user or not, newest first. A subject nobody reported is an empty page, not a
    404: the answer is the same whether or not the subject names an account."""
    size = _page_size(app.settings.limits, limit)
    return _page(await app.linker.logins_of_subject(session, subject, before, size), size)


def _page_size(limits: LimitsSettings, limit: int | None) -> int:
    return min(limit or limits.page_size_default, limits.page_size_max)


def _page(rows: Sequence[LoginEvent], size: int) -> LoginPage:
    next_before = rows[-1].id if len(rows) == size else None
    return LoginPage(items=[login_read(r) for r in rows], next_before=next_before)
