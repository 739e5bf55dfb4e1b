"""Two real server processes on one PostgreSQL database: a token minted by one works on the
other, and a revocation on one reaches the other through LISTEN/NOTIFY, not through the
revocation cache expiring (its TTL is set to 60 s here, far beyond the polling deadline)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, inspect, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from globeguard.db.registry import metadata
from globeguard.identity.revocation import CHANNEL
from tests.helpers import STRONG

STARTUP_DEADLINE_S = 60.0
# Far below REVOCATION_CACHE_TTL: a flip within this deadline can only come from NOTIFY.
FLIP_DEADLINE_S = 5.0
REVOCATION_CACHE_TTL = "PT60S"
CACHE_TTL_S = 60.0


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(
    port: int, env: dict[str, str], cwd: Path, log: Path, *options: str
) -> subprocess.Popen[bytes]:
    """Start `globeguard serve`; returns at once (the process starts in the background)."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "globeguard", "serve", "--port", str(port), *options],
            env=env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def wipe_database(url: str) -> None:
    """Empty every Globeguard table that exists (the schema and alembic_version stay)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            existing = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            for table in reversed(metadata.sorted_tables):
                if table.name in existing:
                    await conn.execute(delete(table))
    finally:
        await engine.dispose()


async def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(
                    f"server exited with {server.process.returncode}:\n"
                    f"{server.log.read_text()[-4000:]}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    pytest.fail(f"server at {server.base_url} not ready:\n{server.log.read_text()[-4000:]}")


async def wait_listening(url: str, processes: int) -> None:
    """Until every process's revocation listener has run LISTEN. A listener clears its cache
    when it connects, so a flip seen before that could not be credited to NOTIFY."""
    database = make_url(url).database
    engine = create_async_engine(url)
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                listening = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                        "AND query ILIKE :listen"
                    ),
                    {"db": database, "listen": f"LISTEN%{CHANNEL}%"},
                )
            if listening >= processes:
                return
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    pytest.fail(f"only {listening} of {processes} processes listen for revocations")


async def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            await asyncio.to_thread(server.process.wait, 15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            await asyncio.to_thread(server.process.wait, 15)


def server_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GLOBEGUARD_DB__URL": database_url,
        "GLOBEGUARD_SECRET_KEY": "same-secret-for-both-processes-of-this-test",
        "GLOBEGUARD_DATA_DIR": str(tmp_path / "data"),
        "GLOBEGUARD_AUTH__REVOCATION_CACHE_TTL": REVOCATION_CACHE_TTL,
        "GLOBEGUARD_LOG_LEVEL": "warning",
    }


@pytest.fixture
async def servers(backend: str, database_url: str, tmp_path: Path) -> AsyncIterator[list[Server]]:
    if backend != "postgresql":
        pytest.skip("several processes need PostgreSQL (SQLite is single-process)")
    await wipe_database(database_url)
    env = server_env(database_url, tmp_path)
    started: list[Server] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = tmp_path / f"server-{name}.log"
            process = spawn(port, env, tmp_path, log)
            started.append(Server(f"http://127.0.0.1:{port}", process, log))
        for server in started:
            await wait_ready(server)
        await wait_listening(database_url, len(started))
        yield started
    finally:
        for server in started:
            await stop(server)
        await wipe_database(database_url)


async def poll_until_rejected(http: httpx.AsyncClient, token: str) -> tuple[httpx.Response, float]:
    """GET /users/me on `http` until it stops answering 200, or the deadline passes."""
    start = time.monotonic()
    while True:
        response = await http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        elapsed = time.monotonic() - start
        if response.status_code != 200 or elapsed > FLIP_DEADLINE_S:
            return response, elapsed
        await asyncio.sleep(0.02)


async def test_revocation_reaches_the_other_process_via_notify(servers):
    a, b = servers
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=10) as on_b,
    ):
        created = await on_a.post(
            "/api/v1/auth/signup", json={"username": "nomad", "password": STRONG}
        )
        assert created.status_code == 201, created.text
        tokens = created.json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}

        # B verifies A's token (shared keys) and now holds the subject's state in its cache.
        for _ in range(2):
            me = await on_b.get("/api/v1/users/me", headers=auth)
            assert me.status_code == 200, me.text
            assert me.json()["id"] == tokens["user_id"]

        out = await on_a.post("/api/v1/auth/logout-all", headers=auth)
        assert out.status_code == 200
        assert (await on_a.get("/api/v1/users/me", headers=auth)).status_code == 401

        response, elapsed = await poll_until_rejected(on_b, tokens["access_token"])
        assert response.status_code == 401, (
            f"process B still accepts the token {elapsed:.1f} s after logout-all on A"
        )
        assert response.json()["code"] == "invalid_token"
        assert elapsed < CACHE_TTL_S  # only NOTIFY explains a flip before the cache expires


async def test_single_session_logout_reaches_the_other_process(servers):
    a, b = servers
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=10) as on_b,
    ):
        assert (
            await on_b.post("/api/v1/auth/signup", json={"username": "fremen", "password": STRONG})
        ).status_code == 201
        signin = {"username": "fremen", "password": STRONG}
        first = (await on_b.post("/api/v1/auth/signin", json=signin)).json()
        second = (await on_b.post("/api/v1/auth/signin", json=signin)).json()
        for tokens in (first, second):
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            assert (await on_a.get("/api/v1/users/me", headers=auth)).status_code == 200

        out = await on_b.post(
            "/api/v1/auth/logout", headers={"Authorization": f"Bearer {first['access_token']}"}
        )
        assert out.status_code == 200 and out.json()["sessions_revoked"] == 1

        response, elapsed = await poll_until_rejected(on_a, first["access_token"])
        assert response.status_code == 401, f"A still accepts it after {elapsed:.1f} s"
        # the other session of the same user is untouched on A
        other = await on_a.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {second['access_token']}"}
        )
        assert other.status_code == 200

        # a refresh on A of B's logged-out session fails too: the database is shared
        refreshed = await on_a.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert refreshed.status_code == 400


async def test_profile_changes_on_one_process_show_on_the_other(servers):
    a, b = servers
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=10) as on_b,
    ):
        created = await on_a.post(
            "/api/v1/auth/signup", json={"username": "stilgar", "password": STRONG}
        )
        auth = {"Authorization": f"Bearer {created.json()['access_token']}"}
        assert (await on_b.get("/api/v1/users/me", headers=auth)).json()["given_name"] is None
        changed = await on_a.patch("/api/v1/users/me", headers=auth, json={"given_name": "Stilgar"})
        assert changed.status_code == 200
        start = time.monotonic()
        while time.monotonic() - start < FLIP_DEADLINE_S:
            seen = (await on_b.get("/api/v1/users/me", headers=auth)).json()["given_name"]
            if seen == "Stilgar":
                break
            await asyncio.sleep(0.02)
        assert seen == "Stilgar"  # B's cached view (TTL 60 s here) was evicted by NOTIFY


async def test_worker_processes_sharing_one_socket_answer(backend, database_url, tmp_path):
    """`serve --workers 2`: uvicorn's parent binds the socket and each worker's event loop
    listens and accepts on it (kit.event_loop); they answered nothing when the loop did not
    make the socket listen."""
    if backend != "postgresql":
        pytest.skip("several processes need PostgreSQL (SQLite is single-process)")
    await wipe_database(database_url)
    port = free_port()
    log = tmp_path / "workers.log"
    env = server_env(database_url, tmp_path)
    server = Server(
        f"http://127.0.0.1:{port}", spawn(port, env, tmp_path, log, "--workers", "2"), log
    )
    try:
        await wait_ready(server)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            answers = await asyncio.gather(*(http.get("/healthz") for _ in range(40)))
        assert [a.status_code for a in answers] == [200] * 40
        assert "accepting paused" not in log.read_text()
    finally:
        await stop(server)
        await wipe_database(database_url)
