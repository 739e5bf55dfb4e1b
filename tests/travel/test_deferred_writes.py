"""Writes whose results nobody reads (`db.bulk.run_steps`: a batch's INSERT, its rollups, its
profiles) cost no hop of their own on the SQLite writer: they ride along with the
transaction's next statement or its COMMIT, in the order issued, and commit or roll back
with it. Elsewhere they run at once. Either way what is stored is the same."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from globeguard.db import sqlite_writer
from globeguard.db.bulk import run_steps
from globeguard.db.session import Database


@pytest.fixture
async def db(settings: Any) -> AsyncIterator[Database]:
    database = Database(settings.db)
    async with database.transaction() as session:
        await session.execute(text("DROP TABLE IF EXISTS deferred_probe"))
        await session.execute(text("CREATE TABLE deferred_probe (id INTEGER PRIMARY KEY, v TEXT)"))
    yield database
    async with database.transaction() as session:
        await session.execute(text("DROP TABLE deferred_probe"))
    await database.dispose()


def _insert(db: Database, *rows: tuple[int, str]) -> tuple[str, Any, bool]:
    if db.dialect == "sqlite":
        return "INSERT INTO deferred_probe (id, v) VALUES (?, ?)", list(rows), True
    return "INSERT INTO deferred_probe (id, v) VALUES ($1, $2)", list(rows), True


async def _stored(db: Database) -> list[tuple[int, str]]:
    async with db.read() as session:
        rows = await session.execute(text("SELECT id, v FROM deferred_probe ORDER BY id"))
        return [tuple(r) for r in rows.all()]


def _hops(db: Database) -> list[str]:
    """What each trip to the writer thread ran, on connections opened from now on."""
    seen: list[str] = []

    @event.listens_for(db.engine.sync_engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        def install(connection: sqlite3.Connection) -> None:
            connection.set_trace_callback(lambda sql: seen.append(sql.split()[0]))

        dbapi_connection.run(install)

    return seen


async def test_deferred_writes_ride_along_in_order_and_are_seen_by_what_follows(
    db: Database,
) -> None:
    async with db.transaction() as session:
        await run_steps(session, [_insert(db, (1, "a"), (2, "b"))])
        await run_steps(session, [("UPDATE deferred_probe SET v = v || '!'", (), False)])
        await run_steps(session, [_insert(db, (3, "c"))])
        seen = (await session.execute(text("SELECT count(*) FROM deferred_probe"))).scalar()
    assert seen == 3
    assert await _stored(db) == [(1, "a!"), (2, "b!"), (3, "c")]


async def test_on_sqlite_they_cost_no_hop_of_their_own(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("the writer thread is SQLite's")
    await db.engine.dispose()
    traced = _hops(db)
    hops = 0
    call = sqlite_writer.WriterThread.call

    def counting(self: Any, job: Any) -> Any:
        nonlocal hops
        if threading.current_thread() is threading.main_thread():
            hops += 1
        return call(self, job)

    sqlite_writer.WriterThread.call = counting  # type: ignore[method-assign]
    try:
        async with db.transaction() as session:
            await session.connection()
            traced.clear()
            hops = 0
            await run_steps(session, [_insert(db, (1, "a"))])
            await run_steps(session, [_insert(db, (2, "b"))])
    finally:
        sqlite_writer.WriterThread.call = call  # type: ignore[method-assign]
    assert hops == 1  # the COMMIT's
    assert traced == ["BEGIN", "INSERT", "INSERT", "COMMIT"]


@pytest.mark.parametrize("then_read", [False, True], ids=["at-commit", "at-next-statement"])
async def test_a_failing_deferred_write_fails_and_rolls_back_its_transaction(
    db: Database, then_read: bool
) -> None:
    async with db.transaction() as session:
        await run_steps(session, [_insert(db, (1, "kept"))])

    async def collide() -> None:
        async with db.transaction() as session:
            await run_steps(session, [_insert(db, (2, "dropped"))])
            await run_steps(session, [_insert(db, (1, "duplicate"))])
            await run_steps(session, [_insert(db, (3, "never"))])
            if then_read:
                await session.execute(text("SELECT count(*) FROM deferred_probe"))

    with pytest.raises(IntegrityError):
        await collide()
    assert await _stored(db) == [(1, "kept")]

    # The connection is clean for the next transaction.
    async with db.transaction() as session:
        await run_steps(session, [_insert(db, (4, "next"))])
    assert await _stored(db) == [(1, "kept"), (4, "next")]


async def test_a_rollback_drops_what_was_deferred(db: Database) -> None:
    class Abandon(Exception):
        pass

    async def abandon() -> None:
        async with db.transaction() as session:
            await run_steps(session, [_insert(db, (1, "gone"))])
            raise Abandon

    with pytest.raises(Abandon):
        await abandon()
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO deferred_probe (id, v) VALUES (2, 'alone')"))
    assert await _stored(db) == [(2, "alone")]
