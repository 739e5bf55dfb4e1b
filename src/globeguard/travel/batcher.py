"""Group commit for one-event posts (`POST /v1/`).

Each concurrent request hands its event to the batcher and waits. One flush at a time takes
every event queued so far and stores them through the bulk path in one transaction: one
replay check, one context read, one INSERT and one commit for the lot, instead of all of that
per request. An idle server flushes a lone event after a single turn of the event loop, so
batching adds no waiting of its own; under load, requests that arrive while a flush runs form
the next batch.

The answers are those of posting the events one by one in arrival order: the bulk path grades
a subject's events of one batch as a timeline (each sees the others, so concurrent posts for
one subject never miss each other) and reports each new event's neighbours after the batch.

An event that fails the group's transaction fails only its own caller: the group is stored
again one event at a time. A database that is not answering fails the whole group at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from globeguard.db.errors import database_unavailable
from globeguard.db.session import Database
from globeguard.travel.ingest import BulkIngestor, IngestReport, ReportedLogin, Stored

log = logging.getLogger(__name__)

# Enough to amortise a transaction, small enough that one batch's grading never holds the
# event loop for long.
MAX_BATCH = 256


@dataclass(frozen=True, slots=True)
class Replayed:
    """The event's uuid was already stored with the same content."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The event's uuid was already stored for another event (the batch's reason text)."""

    reason: str


Outcome = Stored | Replayed | Rejected


@dataclass(slots=True)
class _Waiting:
    event: ReportedLogin
    answer: asyncio.Future[Outcome]


class LoginBatcher:
    def __init__(self, db: Database, ingestor: BulkIngestor, source: str) -> None:
        self.db = db
        self.ingestor = ingestor
        self.source = source
        self._queue: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, event: ReportedLogin) -> Outcome:
        """Store `event` (which must carry an event_uuid) with whatever else is queued."""
        if event.event_uuid is None:
            raise ValueError("batched events need an event_uuid to be matched to their answer")
        answer: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(event, answer))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        # A caller that goes away does not cancel the batch: its event may be stored anyway,
        # as when a client drops the connection after a commit.
        return await asyncio.shield(answer)

    async def _flush_all(self) -> None:
        await asyncio.sleep(0)  # let requests parsed in this turn of the loop join
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            await self._flush(batch)

    async def _flush(self, batch: Sequence[_Waiting]) -> None:
        try:
            outcomes: Sequence[Outcome | Exception] = await self._store(batch)
        except Exception as exc:
            if len(batch) == 1 and not isinstance(exc, IntegrityError):
                outcomes = [exc]
            elif database_unavailable(exc):
                _fail(batch, exc)  # each retry would wait on the same dead database
                return
            else:
                # The group's transaction stored nothing. One of its events failed it: a
                # value the database refuses, or a uuid another process stored between our
                # replay check and our insert (a unique violation). Each event alone now
                # fails, if at all, only its own caller.
                outcomes = await self._store_each(batch)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.answer.done():
                continue
            if isinstance(outcome, Exception):
                waiting.answer.set_exception(outcome)
            else:
                waiting.answer.set_result(outcome)

    async def _store_each(self, batch: Sequence[_Waiting]) -> list[Outcome | Exception]:
        outcomes: list[Outcome | Exception] = []
        for index, one in enumerate(batch):
            try:
                outcomes.append(await self._store_alone(one))
            except Exception as exc:
                if database_unavailable(exc):  # gone mid-way: the rest would wait on it too
                    return [*outcomes, *([exc] * (len(batch) - index))]
                outcomes.append(exc)
        return outcomes

    async def _store_alone(self, one: _Waiting) -> Outcome:
        """An event that lost a uuid race is stored again, now seeing the other row: a
        replay, or a conflict."""
        try:
            return (await self._store([one]))[0]
        except IntegrityError:
            return (await self._store([one]))[0]

    async def _store(self, batch: Sequence[_Waiting]) -> list[Outcome]:
        report = IngestReport()
        numbered = [(line, w.event) for line, w in enumerate(batch, start=1)]
        async with self.db.transaction() as session:
            stored = await self.ingestor.store(session, numbered, self.source, report)
        errors = {error.line: error.reason for error in report.errors}
        outcomes: list[Outcome] = []
        for line, waiting in enumerate(batch, start=1):
            # The first event with a uuid is the one stored; a later one in the same batch is
            # its replay or a conflict, exactly as if it had come in a later batch.
            new = stored.pop(waiting.event.event_uuid or "", None)
            if line in errors:
                outcomes.append(Rejected(errors[line]))
            elif new is not None:
                outcomes.append(new)
            else:
                outcomes.append(Replayed())
        return outcomes


def _fail(batch: Sequence[_Waiting], error: BaseException) -> None:
    for waiting in batch:
        if not waiting.answer.done():
            waiting.answer.set_exception(error)
