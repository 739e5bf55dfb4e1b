"""Engines: SQLite with WAL, foreign keys and a busy timeout; PostgreSQL pooled via asyncpg."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from globeguard.db import sqlite_writer
from globeguard.settings import DatabaseSettings

sqlite_writer.register()

# WAL lets readers run beside the writer; a few connections cover a 2-core process.
SQLITE_READERS = 4
# The WAL file's size once its log starts over (sqlite_threads.Checkpointer): four times the
# log the checkpointer lets build up before it restarts it.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


def _json_dumps(value: Any) -> str:
    # orjson is ~10x faster than json for the metadata, payload and verdict columns.
    return orjson.dumps(value).decode()


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings, url, pool_size=1, read_only=False)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+asyncpg")
    return create_async_engine(
        url,
        echo=settings.echo,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_recycle=int(settings.pool_recycle.total_seconds()),
        # No pre-ping: it costs a round trip on every checkout (~0.3 ms here). A connection
        # that died with the server fails one request with 503 and SQLAlchemy then
        # invalidates the pool.
        pool_pre_ping=False,
    )


def create_read_engine(settings: DatabaseSettings, engine: AsyncEngine) -> AsyncEngine:
    """Engine for reads outside any transaction (Database.read).

    PostgreSQL: the same pool in autocommit, which skips BEGIN/COMMIT round trips. SQLite: a
    pool of its own, so a read never waits for the writer's single connection (WAL readers
    do not block) and a read inside a write transaction cannot deadlock on the pool.
    """
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings, url, pool_size=SQLITE_READERS, read_only=True)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _create_private(path: Path) -> None:
    """An empty owner-only file for SQLite to open: the database holds password hashes, and
    SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_engine(
    settings: DatabaseSettings, url: Any, *, pool_size: int, read_only: bool
) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        _create_private(Path(url.database))
    # Each connection runs its statements on a thread of its own (see sqlite_writer): one
    # hop per statement, where aiosqlite makes four, and never the loop's thread.
    url = url.set(drivername=f"sqlite+{sqlite_writer.DRIVER}")
    busy_ms = int(settings.sqlite_busy_timeout.total_seconds() * 1000)
    # The writer engine has one connection: the process is SQLite's only writer, and queueing
    # on the pool (an asyncio wait) is far cheaper than SQLite's busy handler, which sleeps in
    # millisecond steps and fails read-then-write transactions whose snapshot went stale.
    # Never hold a write session across slow work such as password hashing.
    engine = create_async_engine(
        url,
        echo=settings.echo,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"timeout": busy_ms / 1000},
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
    )
    engine.dialect.checkpoints = not read_only  # type: ignore[attr-defined]

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own BEGIN handling defers the transaction start and breaks SAVEPOINT;
        # we emit BEGIN ourselves (SQLAlchemy's documented SQLite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute(f"PRAGMA cache_size=-{settings.sqlite_cache_mib * 1024}")
        if not read_only:
            # Checkpoints run on a thread of their own (see sqlite_writer), not in COMMIT.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            # A WAL that grew during a burst is cut back to this when the log starts over;
            # otherwise the file keeps its largest size for good.
            cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: when another process (a worker) shares the
        # file, we wait on busy_timeout instead of failing a read-then-write upgrade. Reads
        # (Database.read) run without a transaction: each statement sees committed data, and
        # BEGIN/ROLLBACK would double the round trips of a one-statement read.
        if not read_only:
            # Sent with the transaction's first statement, in the same hop to the thread.
            conn.connection.dbapi_connection.begin("BEGIN IMMEDIATE")

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    # A Session subclass per engine, so commit hooks (cache eviction) stay with their app.
    session_class = type("GlobeguardSession", (Session,), {})
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=True, sync_session_class=session_class
    )
