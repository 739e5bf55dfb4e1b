"""SQLite for the asyncio engine without a thread per connection.

aiosqlite runs every DBAPI call on a worker thread: each statement costs thread hops and GIL
hand-offs (~0.1-0.4 ms here) while an OLTP statement takes microseconds inside SQLite. This
dialect is the standard pysqlite one declared async: the asyncio extension runs it inside its
greenlet, so each call executes on the event loop's own thread, with no hop.

Used for the writer connection only, whose transactions are short by design; reads outside a
transaction (Database.read, e.g. analytics over millions of rows) keep aiosqlite, so a long
query never holds the loop. The cost: while the writer waits for another process's write lock
(busy_timeout), the loop waits too. Globeguard's server is SQLite's only long-lived writer; a
CLI command run beside it holds the lock for milliseconds.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util.concurrency import await_

DRIVER = "inline"


async def _no_wait() -> None:
    """Completes at once: the asyncio extension insists that statement execution awaits
    something, to catch sync drivers used by mistake. This one is sync on purpose."""


class _Cursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """The asyncio extension asks async cursors to buffer their rows before a result goes
        back to sync code; a cursor on the loop's own thread can be read as it is."""


class _Connection(sqlite3.Connection):
    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    driver = DRIVER
    is_async = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: Any) -> Any:
        return AsyncAdaptedQueuePool

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        # The engine's pool may hand the connection to any task of the loop; all of them run
        # on one thread, but tests and the CLI may run loops on other threads.
        kwargs.update(factory=_Connection, check_same_thread=False)
        return super().connect(*args, **kwargs)

    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        await_(_no_wait())
        super().do_execute(cursor, statement, parameters, context)

    def do_executemany(
        self, cursor: Any, statement: Any, parameters: Any, context: Any = None
    ) -> None:
        await_(_no_wait())
        super().do_executemany(cursor, statement, parameters, context)

    def do_execute_no_params(self, cursor: Any, statement: Any, context: Any = None) -> None:
        await_(_no_wait())
        super().do_execute_no_params(cursor, statement, context)


def register() -> None:
    """Makes `sqlite+inline://` URLs resolve to this dialect."""
    registry.register(f"sqlite.{DRIVER}", __name__, InlineSQLiteDialect.__name__)
