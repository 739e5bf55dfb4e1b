"""SQLite connections on threads of their own, one thread hop per statement.

Used for the writer (one connection) and the readers (a small pool), each connection with its
own thread.

Why not pysqlite on the event loop: a statement that waits for another process's write lock
(SQLite's busy handler sleeps), a WAL checkpoint that syncs the disk, or a 1,000-row import
batch stops every request, health probe and background task for as long as it lasts (a lock
held 1.5 s by a CLI command froze the whole server for 1.5 s).

Why not aiosqlite: it hops to its thread four times per statement (cursor, execute, fetch,
close) and once more for BEGIN; measured on the same machine that made small write
transactions ~1.6x slower than running inline. Here each statement is one hop that executes
it and buffers its rows, BEGIN rides along with the first statement, COMMIT is one hop, and
the pool's reset-on-return costs nothing when no transaction is open.

The thread owns the sqlite3 connection; the loop side, here, is a DBAPI-shaped adapter whose
calls run inside SQLAlchemy's asyncio greenlet and wait for the thread with `await_`. The
thread side (WriterThread, and the Checkpointer that keeps the writer's COMMITs free of WAL
checkpoints) is in sqlite_threads.
"""

from __future__ import annotations

import collections
import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.pool import AsyncAdaptedQueuePool

from globeguard.db.sqlite_threads import (
    CHECKPOINT_AFTER_COMMITS,
    Checkpointer,
    Job,
    WriterThread,
)

# Re-exported: tests reach the thread side (moved to sqlite_threads) through this module.
__all__ = [
    "CHECKPOINT_AFTER_COMMITS",
    "DRIVER",
    "Checkpointer",
    "Job",
    "Step",
    "ThreadedConnection",
    "ThreadedCursor",
    "ThreadedSQLiteDialect",
    "WriterThread",
    "register",
]

DRIVER = "threaded"


class _Outcome:
    """What one statement left behind, read on the thread and handed over whole."""

    __slots__ = ("description", "in_transaction", "lastrowid", "rowcount", "rows")

    def __init__(self, cursor: sqlite3.Cursor, rows: list[Any], in_transaction: bool) -> None:
        self.description = cursor.description
        self.rows = rows
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.in_transaction = in_transaction


# (SQL, parameters, executemany?): a write whose rows and counts nobody reads.
Step = tuple[str, Any, bool]


def _opening(begin: str | None, deferred: Sequence[Step], job: Job) -> Job:
    """`job` after what rides along with it: the transaction's BEGIN and the deferred
    writes, in the order they were issued. A deferred write that fails raises its own error
    (noted with its SQL) in place of the job's, which never runs."""
    if begin is None and not deferred:
        return job

    def run(connection: sqlite3.Connection) -> Any:
        if begin is not None:
            connection.execute(begin)
        for sql, parameters, many in deferred:
            try:
                if many:
                    connection.executemany(sql, parameters).close()
                else:
                    connection.execute(sql, parameters).close()
            except sqlite3.Error as exc:
                exc.add_note(f"in a deferred statement: {sql[:300]}")
                raise
        return job(connection)

    return run


def _all_or_nothing(job: Job) -> Job:
    """`job` (a COMMIT with deferred writes riding along), or, if any part of it fails, a
    rollback in the same hop: SQLAlchemy takes a failed COMMIT for an ended transaction and
    sends no ROLLBACK after it, so the connection would go back to the pool inside it."""

    def run(connection: sqlite3.Connection) -> Any:
        try:
            return job(connection)
        except BaseException:
            if connection.in_transaction:
                connection.rollback()
            raise

    return run


def _statement(sql: str, parameters: Any, many: bool) -> Job:
    def run(connection: sqlite3.Connection) -> _Outcome:
        if many:
            cursor = connection.executemany(sql, parameters)
        else:
            cursor = connection.execute(sql, parameters)
        try:
            rows = cursor.fetchall() if cursor.description else []
            return _Outcome(cursor, rows, connection.in_transaction)
        finally:
            cursor.close()

    return run


class ThreadedConnection:
    """The DBAPI connection SQLAlchemy sees."""

    def __init__(self, thread: WriterThread) -> None:
        self._thread = thread
        self._pending_begin: str | None = None
        self._deferred: list[Step] = []
        self._in_transaction = False

    @property
    def thread_ident(self) -> int | None:
        return self._thread.ident

    def run(self, job: Job) -> Any:
        """Any other call on the real connection (pragmas, functions, tests)."""
        if self._deferred:
            return self._call(job)
        return self._thread.call(job)

    def begin(self, statement: str) -> None:
        """Starts a transaction with the next statement, in the same hop."""
        self._pending_begin = statement

    def defer(self, steps: Sequence[Step]) -> None:
        """Writes that ride along with the transaction's next statement or its COMMIT, in
        the same hop and in the order issued (a rollback drops them): a batch's INSERT, its
        rollup upserts and its profile upserts then cost no hop of their own. A failing one
        raises from that later call, which fails the transaction as it would have."""
        self._deferred.extend(steps)

    def cursor(self) -> ThreadedCursor:
        return ThreadedCursor(self)

    def execute_on_thread(self, sql: str, parameters: Any, *, many: bool) -> _Outcome:
        outcome: _Outcome = self._call(_statement(sql, parameters, many))
        self._in_transaction = outcome.in_transaction
        return outcome

    def _call(self, job: Job, *, all_or_nothing: bool = False) -> Any:
        begin, self._pending_begin = self._pending_begin, None
        deferred, self._deferred = self._deferred, []
        opened = _opening(begin, deferred, job)
        try:
            return self._thread.call(_all_or_nothing(opened) if all_or_nothing else opened)
        except BaseException:
            # A failed statement leaves the transaction open (SQLite undoes the statement
            # only); a failed BEGIN never opened one.
            with contextlib.suppress(Exception):
                self._in_transaction = self._thread.call(_in_transaction)
            raise

    def commit(self) -> None:
        checkpointer = self._thread.checkpointer
        if checkpointer is None:
            self._finish(sqlite3.Connection.commit)
            return

        def commit_then_tell(connection: sqlite3.Connection) -> None:
            connection.commit()
            checkpointer.committed()

        self._finish(commit_then_tell)

    def rollback(self) -> None:
        self._deferred = []
        self._finish(sqlite3.Connection.rollback)

    def _finish(self, end: Callable[[sqlite3.Connection], None]) -> None:
        # A transaction that never ran a statement never reached SQLite; the pool's
        # reset-on-return after a commit has nothing to undo.
        if self._deferred:
            self._call(end, all_or_nothing=True)
        else:
            self._pending_begin = None
            if not self._in_transaction:
                return
            self._thread.call(end)
        self._in_transaction = False

    def close(self) -> None:
        self._pending_begin = None
        self._deferred = []
        self._in_transaction = False
        self._thread.stop()

    @property
    def isolation_level(self) -> str | None:
        level: str | None = self.run(lambda c: c.isolation_level)
        return level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.run(lambda c: setattr(c, "isolation_level", value))

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.run(lambda c: c.create_function(*args, **kwargs))


def _in_transaction(connection: sqlite3.Connection) -> bool:
    return connection.in_transaction


class ThreadedCursor:
    """Rows are fetched on the thread with the statement and served from memory."""

    arraysize = 1

    def __init__(self, connection: ThreadedConnection) -> None:
        self._connection = connection
        self._rows: collections.deque[Any] = collections.deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    def execute(self, sql: str, parameters: Any = ()) -> ThreadedCursor:
        return self._take(self._connection.execute_on_thread(sql, parameters, many=False))

    def executemany(self, sql: str, parameters: Sequence[Any]) -> ThreadedCursor:
        return self._take(self._connection.execute_on_thread(sql, parameters, many=True))

    def _take(self, outcome: _Outcome) -> ThreadedCursor:
        self.description = outcome.description
        self.rowcount = outcome.rowcount
        self.lastrowid = outcome.lastrowid
        self._rows = collections.deque(outcome.rows)
        return self

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        count = min(size or self.arraysize, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        """The asyncio extension asks cursors to buffer their rows before a result goes back
        to sync code; these rows are buffered already."""


class ThreadedSQLiteDialect(SQLiteDialect_pysqlite):
    driver = DRIVER
    is_async = True
    supports_statement_cache = True
    # The writer's engine checkpoints the WAL; readers never write, so they need no thread.
    checkpoints = True

    @classmethod
    def get_pool_class(cls, url: Any) -> Any:
        return AsyncAdaptedQueuePool

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        def open_connection() -> sqlite3.Connection:
            return cast(sqlite3.Connection, SQLiteDialect_pysqlite.connect(self, *args, **kwargs))

        in_memory = not args or args[0] in ("", ":memory:") or "mode=memory" in str(args[0])
        checkpointer = None if in_memory or not self.checkpoints else Checkpointer(open_connection)
        connection = ThreadedConnection(WriterThread(open_connection, checkpointer))
        try:
            connection.run(lambda c: None)  # a failure to open surfaces here, not later
        except BaseException:
            connection.close()
            raise
        return connection


def register() -> None:
    """Makes `sqlite+threaded://` URLs resolve to this dialect."""
    registry.register(f"sqlite.{DRIVER}", __name__, ThreadedSQLiteDialect.__name__)
