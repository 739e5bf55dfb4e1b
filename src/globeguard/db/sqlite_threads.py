"""The thread side of the threaded SQLite driver (see sqlite_writer): the thread that owns a
sqlite3 connection and runs jobs on it in order, and the checkpointer that copies the WAL
back into the database from a thread and connection of its own.

Kept apart from sqlite_writer, which is the loop side (the DBAPI adapter SQLAlchemy sees and
the dialect): nothing here knows about SQLAlchemy beyond the greenlet it waits from.

Checkpoints: the writer connection never checkpoints inside a COMMIT (wal_autocheckpoint=0 is
set by the engine), because that checkpoint syncs the disk while every queued write waits. A
second thread with its own connection copies the WAL back into the database (PASSIVE: it
waits for nobody and nobody waits for it) a moment after writes, or at once after a burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.util.concurrency import await_, in_greenlet

Job = Callable[[sqlite3.Connection], Any]


# A checkpoint runs this long after the first commit it would copy, or at once after this
# many commits: often enough that the WAL stays small (SQLite's own default is ~1,000 pages),
# rarely enough that an idle server does nothing.
CHECKPOINT_DELAY_S = 1.0
CHECKPOINT_AFTER_COMMITS = 500


class Checkpointer:
    """Copies committed WAL frames into the database from a thread and connection of its own."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._commits = 0  # a hint shared without a lock: a lost update delays one checkpoint
        self.runs = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """Called by the writer thread after each commit."""
        self._commits += 1
        if self._commits == 1 or self._commits >= CHECKPOINT_AFTER_COMMITS:
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _serve(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stop.is_set():
                self._wake.wait()
                if self._commits < CHECKPOINT_AFTER_COMMITS:
                    self._stop.wait(CHECKPOINT_DELAY_S)  # let a burst gather
                if self._stop.is_set():
                    return
                self._wake.clear()
                self._commits = 0
                connection = connection or self._connect()
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.runs += 1
        except sqlite3.Error:  # the database went away; the next writer connection starts anew
            return
        finally:
            if connection is not None:
                connection.close()


class WriterThread:
    """One thread, one sqlite3 connection, jobs run in the order they were sent."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], checkpointer: Checkpointer | None = None
    ) -> None:
        self._jobs: queue.SimpleQueue[tuple[Job, asyncio.AbstractEventLoop | None, Any] | None]
        self._jobs = queue.SimpleQueue()
        self._connect = connect
        self.checkpointer = checkpointer
        self._thread = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def call(self, job: Job) -> Any:
        """Runs `job(connection)` on the thread; from a greenlet the loop stays free while it
        runs, elsewhere (a pool finaliser without a loop) the caller's thread waits."""
        if in_greenlet():
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            self._jobs.put((job, loop, future))
            return await_(future)
        done: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._jobs.put((job, None, done))
        ok, value = done.get()
        if ok:
            return value
        raise value

    def stop(self) -> None:
        self._jobs.put(None)
        if self.checkpointer is not None:
            self.checkpointer.stop()

    def _serve(self) -> None:
        connection: sqlite3.Connection | None = None
        failure: BaseException | None = None
        try:
            connection = self._connect()
        except BaseException as exc:  # reported to every job, the first being connect's
            failure = exc
        while (item := self._jobs.get()) is not None:
            job, loop, waiter = item
            try:
                if connection is None:
                    raise failure or sqlite3.OperationalError("no connection")
                outcome = (True, job(connection))
            except BaseException as exc:
                outcome = (False, exc)
            _answer(loop, waiter, outcome)
        if connection is not None:
            connection.close()


def _answer(loop: asyncio.AbstractEventLoop | None, waiter: Any, outcome: tuple[bool, Any]) -> None:
    if loop is None:
        waiter.put(outcome)
        return
    # RuntimeError: the loop closed while the job ran, so nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, waiter, outcome)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.cancelled():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
