"""A route for an endpoint that takes the Request and returns its Response itself.

FastAPI documents it as any route (the decorator's response model, request body and
security entries), but serves it without the per-request machinery such an endpoint does not
use: dependency solving (for the app-wide input guard and the Request parameter) and response
validation. On `POST /v1/` that machinery was ~7 % of the event loop's time under load. The
app-wide input guard still runs, here, before the endpoint. A dependency declared on such a
route (or its router) would be skipped, so one is refused when the route is made."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from globeguard.kit.input_guard import refuse_hostile_input

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class RequestRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.dependant.dependencies:
            raise TypeError(f"{path}: a RequestRoute runs no dependencies; read them in it")

    def get_route_handler(self) -> Endpoint:
        endpoint: Endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            await refuse_hostile_input(request)
            return await endpoint(request)

        return handle
