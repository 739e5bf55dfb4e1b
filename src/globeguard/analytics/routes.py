"""/analytics: where sign-ins come from, for admins and `analytics:read` API keys.

The parameters are declared for the OpenAPI page, but parsed from the raw query string by
`params`, which also refuses parameters it does not know (400, naming them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request

from globeguard.analytics.params import (
    ParamError,
    heatmap_params,
    journey_params,
    top_params,
)
from globeguard.analytics.schemas import HeatmapRead, JourneysRead, TopLocationsRead
from globeguard.identity.dependencies import ContainerDep, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.kit.errors import BadRequest

P = TypeVar("P")
router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
Reader = Annotated[Principal, Depends(require(Permission.ANALYTICS_READ))]

Text = str | None
From = Annotated[Text, Query(alias="from", description="first UTC day, YYYY-MM-DD")]
To = Annotated[Text, Query(alias="to", description="last UTC day, inclusive")]
Outcome = Annotated[Text, Query(description="any (default) | success | failure")]
Verdict = Annotated[
    Text, Query(description="comma list: none, plausible, unverifiable, suspicious, impossible")
]
Q = Annotated[Text, Query(description="user search, e.g. user_metadata.subscription_tier:free")]
By = Annotated[Text, Query(description="events (default) | users (distinct)")]
BasisQ = Annotated[Text, Query(description="all (default) | last_login (each user once)")]
Bbox = Annotated[Text, Query(description="south,west,north,east")]


def _filters(from_: From = None, to: To = None, outcome: Outcome = None, q: Q = None) -> None:
    """The filters every analytics request takes, declared once for the OpenAPI page."""


Filters = Annotated[None, Depends(_filters)]


def _parsed(parse: Callable[[list[tuple[str, str]]], P], request: Request) -> P:
    """The raw query string through `parse`; a parameter it refuses is a 400 naming it."""
    try:
        return parse(request.query_params.multi_items())
    except ParamError as exc:
        raise BadRequest(str(exc), code="invalid_parameter", parameter=exc.name) from exc


@router.get("/heatmap", response_model=HeatmapRead)
async def heatmap(
    request: Request,
    app: ContainerDep,
    _: Reader,
    __: Filters,
    verdict: Verdict = None,
    zoom: Annotated[Text, Query(description="map zoom 0-22; sizes the grid")] = None,
    bbox: Bbox = None,
    by: By = None,
    basis: BasisQ = None,
) -> HeatmapRead:
    """Sign-ins binned to a grid sized by the zoom (or the box): `[lat, lon, weight]` cells."""
    params = _parsed(heatmap_params, request)
    async with app.db.read() as session:
        return await app.analytics.heatmap(session, params)


@router.get("/top-locations", response_model=TopLocationsRead)
async def top_locations(
    request: Request,
    app: ContainerDep,
    _: Reader,
    __: Filters,
    verdict: Verdict = None,
    level: Annotated[Text, Query(description="city (default) | region | country")] = None,
    limit: Annotated[Text, Query(description="1-100, default 10")] = None,
    by: By = None,
    basis: BasisQ = None,
    bbox: Bbox = None,
) -> TopLocationsRead:
    """The places most sign-ins come from, keyed by geoname id, with their share of all."""
    params = _parsed(top_params, request)
    async with app.db.read() as session:
        return await app.analytics.top_locations(session, params)


@router.get("/suspicious-travel", response_model=JourneysRead)
async def suspicious_travel(
    request: Request,
    app: ContainerDep,
    _: Reader,
    __: Filters,
    verdict: Annotated[Text, Query(description="suspicious and/or impossible")] = None,
    limit: Annotated[Text, Query(description="1-1000, default 200")] = None,
) -> JourneysRead:
    """Suspicious and impossible journeys, newest first, with both ends for drawing arcs."""
    params = _parsed(journey_params, request)
    async with app.db.read() as session:
        return await app.analytics.suspicious_travel(session, params)
