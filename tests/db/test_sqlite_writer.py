"""The SQLite writer runs off the event loop: a write transaction's statements execute on the
writer's own thread, and a write waiting for another process's lock leaves the loop free."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text

from globeguard.db import sqlite_threads, sqlite_writer
from globeguard.db.session import Database
from globeguard.settings import DatabaseSettings


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"))
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield database
    await database.dispose()


def _trace_threads(db: Database) -> list[tuple[int, str]]:
    """Every statement SQLite runs on new writer connections, with the thread that ran it."""
    seen: list[tuple[int, str]] = []

    @event.listens_for(db.engine.sync_engine, "connect")
    def _trace(dbapi_connection: object, _record: object) -> None:
        def install(connection: sqlite3.Connection) -> None:
            connection.set_trace_callback(lambda sql: seen.append((threading.get_ident(), sql)))

        dbapi_connection.run(install)  # type: ignore[attr-defined]

    return seen


async def test_a_write_transaction_runs_on_the_writer_thread_not_the_loop(db: Database) -> None:
    await db.engine.dispose()  # new connections get the trace
    seen = _trace_threads(db)
    loop_thread = threading.get_ident()

    async with db.transaction() as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('a')"))
        await session.execute(text("UPDATE t SET v = 'b'"))

    statements = [sql for _, sql in seen]
    assert any(sql.startswith("BEGIN IMMEDIATE") for sql in statements)
    assert any(sql.startswith("INSERT") for sql in statements)
    assert any(sql.startswith("COMMIT") for sql in statements)
    assert {thread for thread, _ in seen} and loop_thread not in {thread for thread, _ in seen}


async def test_begin_travels_with_the_first_statement_and_empty_work_costs_nothing(
    db: Database,
) -> None:
    await db.engine.dispose()
    seen = _trace_threads(db)
    async with db.transaction():
        pass  # a unit of work that never touched the database
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('a')"))
    statements = [sql.split()[0] for _, sql in seen if not sql.startswith("PRAGMA")]
    assert statements == ["BEGIN", "INSERT", "COMMIT"]


async def test_a_write_waiting_for_another_process_lock_leaves_the_loop_free(
    db: Database, tmp_path: Path
) -> None:
    """Another connection holds the write lock until the loop itself lets it go: if waiting
    for the lock froze the loop, the release could not run before the busy timeout and the
    write would fail with 'database is locked'."""
    locked, release = threading.Event(), threading.Event()
    released_by_loop: list[bool] = []

    def hold_lock() -> None:
        other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        released_by_loop.append(release.wait(timeout=30))
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    await asyncio.to_thread(locked.wait)

    async def write() -> None:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('waited')"))

    writing = asyncio.create_task(write())
    for _ in range(20):  # the loop keeps turning while the write waits
        await asyncio.sleep(0.01)
    assert not writing.done()
    release.set()
    await writing
    await asyncio.to_thread(holder.join)

    assert released_by_loop == [True]
    async with db.read() as session:
        assert (await session.execute(text("SELECT v FROM t"))).scalars().all() == ["waited"]


async def test_a_failed_statement_keeps_the_transaction_usable_and_rolls_back(
    db: Database,
) -> None:
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO t (id, v) VALUES (1, 'kept')"))

    async def write_then_collide() -> None:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('dropped')"))
            await session.execute(text("INSERT INTO t (id, v) VALUES (1, 'duplicate')"))

    with pytest.raises(Exception, match="UNIQUE"):
        await write_then_collide()
    async with db.transaction() as session:
        rows = (await session.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
    assert rows == ["kept"]


async def test_commits_never_checkpoint_the_wal_a_thread_of_its_own_does(db: Database) -> None:
    for n in range(sqlite_writer.CHECKPOINT_AFTER_COMMITS):
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": str(n)})
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        writer = raw.dbapi_connection
        assert writer is not None
        assert writer.run(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()) == (0,)
        checkpointer = writer._thread.checkpointer
    for _ in range(500):  # it starts at once after a burst this size
        if checkpointer.runs:
            break
        await asyncio.sleep(0.01)
    assert checkpointer.runs >= 1


@pytest.fixture
def long_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Callable[[], sqlite3.Connection], sqlite3.Connection, sqlite3.Connection]]:
    """(connect, writer, reader): a WAL past the restart mark (20 frames here) and a reader
    in a transaction on its snapshot, the older snapshot a restart has to wait for."""
    monkeypatch.setattr(sqlite_threads, "RESTART_AFTER_FRAMES", 20)
    monkeypatch.setattr(sqlite_threads, "CHECKPOINT_DELAY_S", 0)

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(tmp_path / "wal.db", isolation_level=None, check_same_thread=False)

    writer = connect()
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (v BLOB)")
    for _ in range(30):
        writer.execute("INSERT INTO t VALUES (randomblob(5000))")
    reader = connect()
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (30,)  # holds its snapshot
    yield connect, writer, reader
    reader.close()
    writer.close()


def _frames_in_log(connect: Callable[[], sqlite3.Connection]) -> int:
    probe = connect()
    try:
        return int(probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        probe.close()


def _checkpoint_now(checkpointer: sqlite_threads.Checkpointer) -> None:
    done = checkpointer.runs
    checkpointer.committed()
    for _ in range(1000):
        if checkpointer.runs > done:
            return
        time.sleep(0.01)
    raise AssertionError("the checkpoint never ran")


def test_a_long_wal_starts_over_though_a_reader_holds_an_older_snapshot(
    long_wal: tuple[Callable[[], sqlite3.Connection], sqlite3.Connection, sqlite3.Connection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under sustained load some read is always running, so the WAL never started over on its
    own and grew for as long as the load lasted. The checkpointer restarts it once it holds
    RESTART_AFTER_FRAMES, waiting for the reader that was there first."""
    connect, writer, reader = long_wal
    monkeypatch.setattr(sqlite_threads, "RESTART_WAIT_MS", 10_000)
    checkpointer = sqlite_threads.Checkpointer(connect)
    try:
        # The reader finishes while the checkpoint is under way, as reads under load do.
        threading.Timer(0.3, reader.execute, ["COMMIT"]).start()
        _checkpoint_now(checkpointer)
        writer.execute("INSERT INTO t VALUES (1)")  # a write after a restart begins the log anew
        assert _frames_in_log(connect) < 20
        assert checkpointer.restarts == 1
    finally:
        checkpointer.stop()


def test_a_restart_that_a_long_read_outlasts_gives_up_and_the_next_checkpoint_restarts(
    long_wal: tuple[Callable[[], sqlite3.Connection], sqlite3.Connection, sqlite3.Connection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read longer than RESTART_WAIT_MS (an export) makes the restart give up rather than
    hold writers off for it; the checkpointer goes on, and restarts once the read is over."""
    connect, writer, reader = long_wal
    monkeypatch.setattr(sqlite_threads, "RESTART_WAIT_MS", 1)
    checkpointer = sqlite_threads.Checkpointer(connect)
    try:
        _checkpoint_now(checkpointer)
        assert checkpointer.restarts == 0
        writer.execute("INSERT INTO t VALUES (1)")
        assert _frames_in_log(connect) > 30  # still the long log
        reader.execute("COMMIT")
        _checkpoint_now(checkpointer)
        writer.execute("INSERT INTO t VALUES (2)")
        assert checkpointer.restarts == 1
        assert _frames_in_log(connect) < 20
    finally:
        checkpointer.stop()
