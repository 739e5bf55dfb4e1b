"""Counting the trips to the SQLite writer thread, and what each one ran."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

from sqlalchemy import event

from globeguard.db import sqlite_writer
from globeguard.db.session import Database


@contextmanager
def writer_trips(
    db: Database, counted: Callable[[], bool] = lambda: True
) -> Iterator[list[list[str]]]:
    """Each trip the event loop makes to the writer thread while inside, as the list of its
    statements' first three words, on connections opened from the start (dispose the engine
    first). `counted` picks the trips (say, those of one request's task); the others' go
    unrecorded even while a counted one waits for its turn."""
    trips: list[list[str]] = []
    running = threading.local()

    @event.listens_for(db.engine.sync_engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        def install(connection: sqlite3.Connection) -> None:
            def seen(sql: str) -> None:
                trip = getattr(running, "trip", None)
                if trip is not None:
                    trip.append(" ".join(sql.split()[:3]))

            connection.set_trace_callback(seen)

        dbapi_connection.run(install)

    call = sqlite_writer.WriterThread.call

    def counting(self: Any, job: Any) -> Any:
        if threading.current_thread() is not threading.main_thread() or not counted():
            return call(self, job)
        trip: list[str] = []
        trips.append(trip)

        def traced(connection: sqlite3.Connection) -> Any:
            running.trip = trip
            try:
                return job(connection)
            finally:
                running.trip = None

        return call(self, traced)

    try:
        with patch.object(sqlite_writer.WriterThread, "call", counting):
            yield trips
    finally:
        event.remove(db.engine.sync_engine, "connect", _trace)
