"""`POST /v1/`: the Superman API's contract, unchanged for its clients.

Errors follow the seed's family of implementations: malformed input is 400 (not FastAPI's 422)
and stores nothing; an address that parses but cannot be located is 422.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from globeguard.adapters.geoip.port import GeoReason
from globeguard.identity.dependencies import api_key_scheme, oauth2_scheme, optional_principal
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.kit.errors import BadRequest, Conflict, Unauthorized, Unprocessable
from globeguard.kit.lean_route import RequestRoute
from globeguard.kit.limits import LATEST_UNIX, StorableText
from globeguard.travel.batcher import Replayed
from globeguard.travel.ingest import Login, Stored, digest
from globeguard.travel.ingest.events import plain_text
from globeguard.travel.service import LoginReport
from globeguard.travel.superman_view import SupermanAccess, SupermanView, superman_view
from globeguard.wiring import Container

router = APIRouter(tags=["superman"], route_class=RequestRoute)


class SupermanEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: StorableText = Field(min_length=1, max_length=320)
    # Up to the last second kit.limits accepts (9998-12-31T23:59:59Z): anything larger is a
    # millisecond timestamp or garbage, and travel arithmetic near 9999 would overflow.
    unix_timestamp: StrictInt = Field(gt=0, le=LATEST_UNIX)
    event_uuid: StorableText = Field(min_length=1, max_length=64)
    ip_address: StorableText = Field(min_length=1, max_length=64)


class GeoOut(BaseModel):
    lat: float
    lon: float
    radius: int | None


class AccessOut(GeoOut):
    ip: str | None
    speed: int | None
    timestamp: int


class SupermanResponse(BaseModel):
    currentGeo: GeoOut  # noqa: N815 - the seed's key
    travelToCurrentGeoSuspicious: bool  # noqa: N815
    travelFromCurrentGeoSuspicious: bool  # noqa: N815
    precedingIpAccess: AccessOut | None = None  # noqa: N815
    subsequentIpAccess: AccessOut | None = None  # noqa: N815


class Posted(NamedTuple):
    """A valid body, as SupermanEvent holds it."""

    username: str
    unix_timestamp: int
    event_uuid: str
    ip_address: str


def _parse(raw: bytes) -> Posted:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not JSON: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object", code="invalid_json")
    return _plain(data) or _validated(data)


def _plain(data: dict[str, Any]) -> Posted | None:
    """The body, when each field is plainly what SupermanEvent accepts as it is (a hand check
    of four fields costs a tenth of the model's); None leaves it to the model."""
    username, when = data.get("username"), data.get("unix_timestamp")
    event_uuid, ip = data.get("event_uuid"), data.get("ip_address")
    if (
        type(when) is int
        and 0 < when <= LATEST_UNIX
        and plain_text(username, 1, 320)
        and plain_text(event_uuid, 1, 64)
        and plain_text(ip, 1, 64)
    ):
        return Posted(username, when, event_uuid, ip)
    return None


def _validated(data: dict[str, Any]) -> Posted:
    try:
        event = SupermanEvent.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise BadRequest(
            f"invalid or missing: {fields}", code="invalid_event", errors=errors
        ) from exc
    return Posted(event.username, event.unix_timestamp, event.event_uuid, event.ip_address)


def _geo(place: Any) -> dict[str, Any]:
    radius = int(place.radius_km) if place.radius_km is not None else None
    return {"lat": place.lat, "lon": place.lon, "radius": radius}


def _access(access: SupermanAccess | None) -> dict[str, Any] | None:
    if access is None or access.event.place is None:
        return None
    event = access.event
    return {
        **_geo(event.place),
        "ip": event.ip,
        "speed": access.speed,
        "timestamp": int(event.occurred_at.timestamp()),
    }


def render(view: SupermanView) -> dict[str, Any]:
    assert view.current.place is not None
    body: dict[str, Any] = {
        "currentGeo": _geo(view.current.place),
        "travelToCurrentGeoSuspicious": view.travel_to_current_geo_suspicious,
        "travelFromCurrentGeoSuspicious": view.travel_from_current_geo_suspicious,
    }
    # Absent neighbours are omitted, as the seed does, never zero-filled.
    if (before := _access(view.preceding)) is not None:
        body["precedingIpAccess"] = before
    if (after := _access(view.subsequent)) is not None:
        body["subsequentIpAccess"] = after
    return body


async def _caller(request: Request) -> Principal | None:
    """The caller, as the OptionalPrincipal dependency finds it, without FastAPI solving three
    dependencies per request (measured ~110 µs of a /v1/ request, more than the cached
    credential check itself)."""
    token = await oauth2_scheme(request)
    api_key = await api_key_scheme(request)
    return await optional_principal(request, token, api_key)


def _authorize(app: Container, principal: Principal | None) -> None:
    if app.settings.travel.superman_open:
        return
    if principal is None:
        raise Unauthorized(
            "send an API key with the 'login_events:write' scope in X-API-KEY",
            code="not_authenticated",
        )
    principal.require(Permission.LOGIN_EVENTS_WRITE)


@router.post(
    "/v1/",
    response_model=SupermanResponse,
    response_model_exclude_none=True,
    summary="Superman-compatible login event",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SupermanEvent.model_json_schema()}},
        },
        # What the OptionalPrincipal dependency would declare (see _caller).
        "security": [{"Bearer": []}, {"ApiKey": []}],
    },
)
async def superman(request: Request) -> Response:
    """Record a login `{username, unix_timestamp, event_uuid, ip_address}` and answer where it
    was and whether travel to it (from the preceding login) or from it (to the subsequent
    one) exceeds 500 mph. Posting the same event again answers with today's neighbours; the
    same `event_uuid` with another body is 409."""
    app: Container = request.app.state.container
    _authorize(app, await _caller(request))
    posted = _parse(await request.body())
    geo = app.logins.locate(posted.ip_address)
    assert geo is not None
    if geo.reason is GeoReason.INVALID:
        raise BadRequest(f"'{posted.ip_address}' is not an IP address", code="invalid_ip")
    if not geo.located:  # refused before anything is stored
        raise Unprocessable(
            f"{geo.ip} cannot be located ({geo.reason})",
            code="ip_not_locatable",
            reason=str(geo.reason),
        )
    # Already validated: the bulk path's event, without validating it again.
    event = Login(
        posted.username,
        datetime.fromtimestamp(posted.unix_timestamp, tz=UTC),
        geo.ip,
        event_uuid=posted.event_uuid,
    )
    outcome = await app.superman_batcher.submit(event)
    threshold = app.settings.travel.speed_threshold_mph
    if isinstance(outcome, Stored):
        view = superman_view(outcome.current, outcome.neighbours, threshold)
    elif isinstance(outcome, Replayed):
        view = await _replay(app, event)
    else:
        raise Conflict(outcome.reason, code="event_uuid_conflict", event_uuid=posted.event_uuid)
    return Response(orjson.dumps(render(view)), media_type="application/json")


async def _replay(app: Container, event: Login) -> SupermanView:
    """The stored event with its neighbours as they are now."""
    report = LoginReport(
        subject=event.subject,
        occurred_at=event.occurred_at,
        success=True,
        source="superman",
        ip=event.ip,
        event_uuid=event.event_uuid,
        body_digest=digest(event),
    )
    async with app.db.transaction() as session:
        recorded = await app.logins.record(session, report)
    return recorded.superman(app.settings.travel.speed_threshold_mph)
