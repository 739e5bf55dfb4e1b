"""The database going away after start-up: every request that needs it gets a 503 problem
with Retry-After (never a 500), /readyz says not ready, and the service serves again as soon
as the database is back, without a restart.

PostgreSQL is reached through a TCP relay on loopback that the test closes (connection
refused, existing connections cut) and opens again; its backends are also terminated from an
admin connection. SQLite's file is made unopenable under a live service."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from globeguard.app import create_app
from tests.conftest import PG_ENV, make_settings, wipe
from tests.helpers import STRONG, bearer, make_admin, signup


class Relay:
    """A loopback TCP relay to PostgreSQL that can be cut (refusing and dropping) and
    restored on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._pipes):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._pipes.difference_update((writer, up_writer))


async def _expect_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] == "database_unavailable"


async def _requests_needing_the_database(client: httpx.AsyncClient, admin: dict) -> list:
    return [
        await client.post("/api/v1/auth/signin", json={"username": "ann", "password": STRONG}),
        await client.get("/api/v1/users", headers=bearer(admin)),
    ]


async def _expect_oauth_unavailable(client: httpx.AsyncClient) -> None:
    # The token endpoint answers OAuth clients in their own shape (RFC 6749 §5.2), even now.
    form = {"grant_type": "password", "username": "ann", "password": STRONG}
    response = await client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "temporarily_unavailable"


async def _serves_again(client: httpx.AsyncClient, admin: dict) -> None:
    # One request may still meet a connection that died with the outage; SQLAlchemy then
    # discards the pool's stale connections, and the next request opens a fresh one.
    statuses = []
    for _ in range(3):
        signin = await client.post(
            "/api/v1/auth/signin", json={"username": "ann", "password": STRONG}
        )
        statuses.append(signin.status_code)
        if signin.status_code != 503:
            break
    assert statuses in ([200], [503, 200]), signin.text
    users = await client.get("/api/v1/users", headers=bearer(admin))
    assert users.status_code == 200, users.text
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text


@pytest.fixture
async def pg_admin_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    return url


@pytest.fixture
async def relayed(database_url, tmp_path) -> AsyncIterator[tuple]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the relay stands between the service and PostgreSQL")
    url = make_url(database_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    await relay.open()
    relayed_url = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    # One connection in the pool keeps the test's picture simple: it is the one that dies.
    settings = make_settings(relayed_url, tmp_path, db={"url": relayed_url, "pool_size": 1})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admin = await make_admin(client, app.state.container)
            await signup(client, "ann")
            try:
                yield client, admin, relay
            finally:
                with contextlib.suppress(OSError):
                    await relay.open()
                await wipe(app.state.container)


async def test_postgresql_refusing_connections_is_503_then_recovers(relayed):
    client, admin, relay = relayed
    await relay.cut()
    for response in await _requests_needing_the_database(client, admin):
        await _expect_unavailable(response)
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] != "ok"
    await relay.open()
    await _serves_again(client, admin)


async def _terminate_backends(admin_url: str, database: str) -> int:
    engine = create_async_engine(
        make_url(admin_url).set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
            return int(result.scalar() or 0)
    finally:
        await engine.dispose()


async def test_postgresql_backends_terminated_is_503_not_500(client, database_url, pg_admin_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    container = client._transport.app.state.container  # type: ignore[attr-defined]
    admin = await make_admin(client, container)
    await signup(client, "ann")
    killed = await _terminate_backends(pg_admin_url, make_url(database_url).database or "")
    assert killed >= 1
    # Each pooled connection died; whichever request meets one first gets the 503.
    for _ in range(4):
        for response in await _requests_needing_the_database(client, admin):
            assert response.status_code in (200, 503), response.text
            if response.status_code == 503:
                await _expect_unavailable(response)
    await _serves_again(client, admin)


@pytest.fixture
async def sqlite_service(database_url, tmp_path) -> AsyncIterator[tuple]:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    url = f"sqlite+aiosqlite:///{db_dir}/globeguard.db"
    app = create_app(make_settings(url, tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admin = await make_admin(client, app.state.container)
            await signup(client, "ann")
            yield client, admin, app.state.container, db_dir


def _move_away(db_dir: Path) -> Path:
    """Put a plain file where the database's directory was: nothing there can be opened."""
    hidden = db_dir.with_name("db-away")
    db_dir.rename(hidden)
    db_dir.write_text("not a directory")
    return hidden


def _bring_back(db_dir: Path, hidden: Path) -> None:
    db_dir.unlink()
    hidden.rename(db_dir)


async def test_sqlite_file_gone_is_503_then_recovers(sqlite_service):
    client, admin, container, db_dir = sqlite_service
    # Open connections would keep reading the moved file; a process that (re)opens the
    # database, as after a pool reset, finds nothing to open.
    await container.db.dispose()
    hidden = _move_away(db_dir)
    try:
        for response in await _requests_needing_the_database(client, admin):
            await _expect_unavailable(response)
        await _expect_oauth_unavailable(client)
        assert (await client.get("/readyz")).status_code == 503
    finally:
        _bring_back(db_dir, hidden)
    await _serves_again(client, admin)
