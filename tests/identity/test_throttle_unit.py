"""The sign-in throttle's pure parts, and its behaviour when Redis is gone."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from globeguard.app import create_app
from globeguard.identity.auth.throttle import network_of
from tests.conftest import make_settings, wipe


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("192.0.2.10", "192.0.2.10"),  # IPv4: the address itself
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # IPv6: the line's /64
        ("2001:db8:1:2:bbbb:cccc:dddd:eeee", "2001:db8:1:2::/64"),  # a privacy address, same line
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),  # the neighbouring /64 is another line
        (None, None),  # no address: never known
        ("not-an-address", None),
    ],
)
def test_a_known_address_stands_for_its_network(ip, network):
    assert network_of(ip) == network


async def test_sign_in_without_its_redis_is_a_503_problem(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, kv={"url": "redis://127.0.0.1:1/0"})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 9))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            try:
                response = await client.post(
                    "/api/v1/auth/signin", json={"username": "anyone", "password": "whatever1"}
                )
            finally:
                await wipe(app.state.container)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "counters_unavailable"
    assert int(response.headers["Retry-After"]) > 0


async def _never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # takes every command, answers none, until the client gives up


async def test_a_redis_that_never_answers_is_a_503_after_the_configured_timeout(
    database_url, tmp_path
):
    silent = await asyncio.start_server(_never_answers, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    settings = make_settings(
        database_url,
        tmp_path,
        kv={"url": f"redis://127.0.0.1:{port}/0", "timeout": timedelta(milliseconds=200)},
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 9))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                try:
                    response = await client.post(
                        "/api/v1/auth/signin", json={"username": "anyone", "password": "x" * 9}
                    )
                finally:
                    await wipe(app.state.container)
    finally:
        silent.close()
    assert response.status_code == 503
    assert response.json()["code"] == "counters_unavailable"
    assert int(response.headers["Retry-After"]) > 0
