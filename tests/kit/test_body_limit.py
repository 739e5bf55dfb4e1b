"""BodyLimitMiddleware on a bare Starlette app: declared sizes are refused before a byte is
read, undeclared ones as they pass the limit, and a route's own limit replaces the default."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from globeguard.kit.body_limit import BodyLimitMiddleware, limit_body

DEFAULT = 1000
chunks_read: list[int] = []


async def _count(request: Request) -> JSONResponse:
    size = 0
    async for chunk in request.stream():
        if chunk:
            chunks_read.append(len(chunk))
        size += len(chunk)
    return JSONResponse({"size": size})


async def default(request: Request) -> JSONResponse:
    return await _count(request)


async def unlimited(request: Request) -> JSONResponse:
    limit_body(request, None)
    return await _count(request)


async def small(request: Request) -> JSONResponse:
    limit_body(request, 10)
    return await _count(request)


app = Starlette(
    routes=[
        Route("/default", default, methods=["POST"]),
        Route("/unlimited", unlimited, methods=["POST"]),
        Route("/small", small, methods=["POST"]),
    ],
    middleware=[Middleware(BodyLimitMiddleware, default_bytes=DEFAULT)],
)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    chunks_read.clear()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def _chunked(size: int, step: int = 100) -> AsyncIterator[bytes]:
    for _ in range(size // step):
        yield b"x" * step


@pytest.mark.parametrize(
    ("route", "size", "status"),
    [
        ("/default", DEFAULT, 200),
        ("/default", DEFAULT + 1, 413),
        ("/unlimited", 50 * DEFAULT, 200),
        ("/small", 10, 200),
        ("/small", 11, 413),
    ],
)
async def test_declared_bodies(client, route, size, status):
    response = await client.post(route, content=b"x" * size)
    assert response.status_code == status
    if status == 413:
        assert chunks_read == []  # refused on the declared length, before reading


@pytest.mark.parametrize(
    ("route", "size", "status"),
    [
        ("/default", DEFAULT, 200),
        ("/default", DEFAULT + 100, 413),
        ("/unlimited", 50 * DEFAULT, 200),
        ("/small", 100, 413),
    ],
)
async def test_chunked_bodies_are_counted_as_they_arrive(client, route, size, status):
    response = await client.post(route, content=_chunked(size))
    assert response.status_code == status
    if status == 413:
        # Reading stops at the first chunk past the limit.
        assert sum(chunks_read) <= max(DEFAULT, 10)


async def test_a_lying_content_length_is_still_counted(client):
    # An ASGI server enforces the declared length; a proxy that does not is covered by counting.
    async def receive_more(scope, receive, send):
        messages = [
            {"type": "http.request", "body": b"x" * 600, "more_body": True},
            {"type": "http.request", "body": b"x" * 600, "more_body": False},
        ]

        async def fake_receive():
            return messages.pop(0)

        scope["headers"] = [(b"content-length", b"10")]
        await app(scope, fake_receive, send)

    transport = httpx.ASGITransport(app=receive_more)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post("/default", content=b"x")
    assert response.status_code == 413
