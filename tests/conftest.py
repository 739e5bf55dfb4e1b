"""Shared fixtures. Every test that uses `client` (or `app`) runs once per database backend:
SQLite always, PostgreSQL when GLOBEGUARD_TEST_POSTGRES_URL is set (`make test` sets it; in CI
a missing PostgreSQL fails the run instead of skipping)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from globeguard.app import create_app
from globeguard.db.registry import metadata
from globeguard.settings import Settings
from globeguard.wiring import Container, build
from tests.support.smtp import smtp_server, smtp_server_starttls, smtps_server  # noqa: F401

PG_ENV = "GLOBEGUARD_TEST_POSTGRES_URL"

# Property tests judge behaviour, never speed: hypothesis's per-example deadline and its
# "too slow" health check are wall-clock thresholds, and they failed on a loaded 2-core
# machine running one test process per core.
hypothesis_settings.register_profile(
    "globeguard", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("globeguard")


def _backends() -> list[str]:
    backends = ["sqlite"]
    if os.environ.get(PG_ENV):
        backends.append("postgresql")
    elif os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI=true but {PG_ENV} is not set: PostgreSQL tests cannot run")
    return backends


async def _create_pg_database(admin_url: str) -> tuple[str, str]:
    name = f"gg_test_{secrets.token_hex(4)}"
    engine = create_async_engine(
        make_url(admin_url).set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), name


async def _drop_pg_database(admin_url: str, name: str) -> None:
    engine = create_async_engine(
        make_url(admin_url).set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", params=_backends())
async def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> AsyncIterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "globeguard.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    admin_url = os.environ[PG_ENV]
    url, name = await _create_pg_database(admin_url)
    try:
        yield url
    finally:
        await _drop_pg_database(admin_url, name)


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


# Every test process (one per core) shares one PostgreSQL server and its 100 connections. At
# the default 10 + 20 per app, two concurrent bursts of 60 requests, with the apps other tests
# left open, went past it: "too many clients" is a 503. Ten per app queue a burst instead.
_TEST_POOL = {"pool_size": 4, "max_overflow": 6}


def make_settings(database_url: str, data_dir: Path, **overrides) -> Settings:
    # A test's sign-ins are a settled user's unless it says otherwise: the default week of
    # learning (TravelSettings.learning_period) grades every journey of a new user's first
    # days one step lower, and most scenarios here last minutes.
    travel = {"learning_period": timedelta(0), **overrides.pop("travel", {})}
    values = {
        "db": {"url": database_url, **_TEST_POOL, **overrides.pop("db", {})},
        "data_dir": data_dir,
        "secret_key": "test-secret-key-not-for-production",
        "travel": travel,
        # Redis's 5 s command timeout is a wall-clock threshold: a test process starved of CPU
        # (60 requests at once beside another worker) waited longer for replies that were
        # already there, and the requests got 503.
        "kv": {"timeout": timedelta(seconds=120), **overrides.pop("kv", {})},
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


async def wipe(container: Container) -> None:
    async with container.db.transaction() as session:
        for table in reversed(metadata.sorted_tables):
            await session.execute(delete(table))


@pytest.fixture
def container(settings: Settings) -> Container:
    return build(settings)


@pytest.fixture
async def app(container: Container, settings: Settings):
    application = create_app(settings, container)
    async with application.router.lifespan_context(application):
        try:
            yield application
        finally:
            await wipe(container)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
