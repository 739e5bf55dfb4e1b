"""Request body limits for every route, counted as the body streams in.

`BodyLimitMiddleware` wraps each HTTP request's `receive`. Every time the application reads a
chunk, the limit in force is the one the route set with `limit_body(request, n)` before
reading, or the middleware's default. A declared Content-Length over the limit is refused
before a byte is read; a body without one (chunked) is counted as it arrives and refused the
moment it passes the limit, so nothing past the limit is ever buffered.

Routes whose body FastAPI parses (a pydantic model) get the default; routes that read the
body themselves name their own limit first, e.g. a stream spooled to disk takes `None`
(unlimited) and a 16 KiB message takes 16 * 1024. The refusal is an HTTPException(413), so
the application's handler for those renders it.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LIMIT_KEY = "globeguard.body_limit"
_UNSET: Any = object()


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body may be at most {limit} bytes")
        self.limit = limit


def limit_body(connection: HTTPConnection, max_bytes: int | None) -> None:
    """Set this request's body limit (None: unlimited); call before reading the body."""
    connection.scope[_LIMIT_KEY] = max_bytes


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None or not value.isdigit():
        return None  # a malformed length is the server's business; we count what arrives
    return int(value)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default_bytes: int) -> None:
        self.app = app
        self.default_bytes = default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        received = 0

        async def counted() -> Message:
            nonlocal received
            limit = scope.get(_LIMIT_KEY, _UNSET)
            if limit is _UNSET:
                limit = self.default_bytes
            if limit is not None and declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if limit is not None and received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)
