"""The thread side of the threaded SQLite driver (see sqlite_writer): the thread that owns a
sqlite3 connection and runs jobs on it in order, and the checkpointer that copies the WAL
back into the database from a thread and connection of its own.

Kept apart from sqlite_writer, which is the loop side (the DBAPI adapter SQLAlchemy sees and
the dialect): nothing here knows about SQLAlchemy beyond the greenlet it waits from.

Checkpoints: the writer connection never checkpoints inside a COMMIT (wal_autocheckpoint=0 is
set by the engine), because that checkpoint syncs the disk while every queued write waits. A
second thread with its own connection copies the WAL back into the database (PASSIVE: it
waits for nobody and nobody waits for it) a moment after writes, or at once after a burst.

PASSIVE alone never shrinks the WAL under sustained writes: SQLite starts the log over only
when a write begins with every frame copied and no reader on an older snapshot, and with
writes arriving all the time a PASSIVE checkpoint is always behind the newest commit. The log
then grows for as long as the load lasts (1.6 GB, 388,000 frames, in a 40,000-webhook
redrive), and every page read searches a longer WAL index: per delivery the writer's CPU
tripled. So once the log holds RESTART_AFTER_FRAMES, the checkpointer also runs a RESTART,
which holds off writers while it copies the last frames and waits for the readers still on
older snapshots; it waits at most RESTART_WAIT_MS for either (writes queue on the writer
thread meanwhile, never on the event loop) and otherwise tries again at the next checkpoint.
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
# One WAL-index hash table covers 4,096 frames (16 MiB of 4 KiB pages); past that, a page
# lookup searches more than one.
RESTART_AFTER_FRAMES = 4096
# How long a RESTART may hold off the writer waiting for the lock or for readers: a reader's
# snapshot lasts one read (milliseconds); a longer one (an export) makes it give up for now.
RESTART_WAIT_MS = 20


class Checkpointer:
    """Copies committed WAL frames into the database from a thread and connection of its own."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._commits = 0  # a hint shared without a lock: a lost update delays one checkpoint
        self.runs = 0
        self.restarts = 0
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

    def _open(self) -> sqlite3.Connection:
        connection = self._connect()
        # Only RESTART waits on the busy handler; PASSIVE never calls it.
        connection.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        return connection

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= RESTART_AFTER_FRAMES:
            # busy=1 (no error) when the lock or a reader outlasted the wait: the log stays
            # as it is and the next checkpoint tries again.
            busy, _frames, _copied = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            if not busy:
                self.restarts += 1
        self.runs += 1

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
                connection = connection or self._open()
                self._checkpoint(connection)
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
