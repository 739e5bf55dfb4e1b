"""A RequestRoute skips FastAPI's dependency solving, so a dependency given to one would
silently not run: it is refused when the route is made."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, Request, Response

from globeguard.kit.lean_route import RequestRoute


async def _guard() -> None:
    return None


async def _endpoint(request: Request) -> Response:
    return Response(b"{}")


def test_a_dependency_on_the_route_is_refused() -> None:
    router = APIRouter(route_class=RequestRoute)
    with pytest.raises(TypeError, match="runs no dependencies"):
        router.post("/x", dependencies=[Depends(_guard)])(_endpoint)


def test_a_dependency_on_its_router_is_refused() -> None:
    router = APIRouter(route_class=RequestRoute, dependencies=[Depends(_guard)])
    with pytest.raises(TypeError, match="runs no dependencies"):
        router.post("/x")(_endpoint)


def test_a_route_taking_only_the_request_is_made() -> None:
    router = APIRouter(route_class=RequestRoute)
    router.post("/x")(_endpoint)
    assert [route.path for route in router.routes] == ["/x"]
