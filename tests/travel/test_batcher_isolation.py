"""The `POST /v1/` group commit: an event that fails its group's transaction fails only its
own caller; every other event of the group is stored and answered as if posted alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from globeguard.travel.batcher import LoginBatcher
from globeguard.travel.ingest import BulkIngestor, IncomingEvent, Stored
from globeguard.travel.models import LoginEvent

POISON = "poison"


class PoisonRefusing(BulkIngestor):
    """Fails any transaction that holds the poisoned subject, as the database does with a
    value it cannot store, after the good events of the batch were written."""

    async def store(self, session: Any, batch: Sequence[tuple[int, IncomingEvent]], *a, **kw):
        stored = await super().store(session, batch, *a, **kw)
        if any(event.subject == POISON for _, event in batch):
            raise ValueError("the database refused a value")
        return stored


class Unreachable(BulkIngestor):
    calls = 0

    async def store(self, session: Any, batch: Sequence[tuple[int, IncomingEvent]], *a, **kw):
        Unreachable.calls += 1
        raise OperationalError("INSERT", {}, ConnectionRefusedError(111, "refused"))


def _event(n: int, subject: str | None = None) -> IncomingEvent:
    return IncomingEvent.model_validate(
        {
            "subject": subject or f"user{n}",
            "ip": "203.0.113.9",
            "occurred_at": 1_700_000_000 + n,
            "event_uuid": f"evt-{n}",
        }
    )


async def _count(container) -> int:
    async with container.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(LoginEvent))).scalar())


async def test_one_poisoned_event_fails_only_its_caller(app):
    container = app.state.container
    ingestor = PoisonRefusing(container.ingestor.locator, container.ingestor.settings)
    batcher = LoginBatcher(container.db, ingestor, source="superman")
    events = [_event(n) for n in range(60)]
    events.insert(30, _event(999, POISON))
    before = await _count(container)

    # Submitted in one turn of the loop, all 61 form one group.
    answers = await asyncio.gather(*(batcher.submit(e) for e in events), return_exceptions=True)

    failed = [e.subject for e, a in zip(events, answers, strict=True) if isinstance(a, Exception)]
    assert failed == [POISON]
    good = [a for a in answers if not isinstance(a, Exception)]
    assert len(good) == 60 and all(isinstance(a, Stored) for a in good)
    assert await _count(container) == before + 60


async def test_an_unreachable_database_fails_the_group_at_once(app):
    container = app.state.container
    ingestor = Unreachable(container.ingestor.locator, container.ingestor.settings)
    batcher = LoginBatcher(container.db, ingestor, source="superman")
    Unreachable.calls = 0
    answers = await asyncio.gather(
        *(batcher.submit(_event(n)) for n in range(20)), return_exceptions=True
    )
    assert all(isinstance(a, OperationalError) for a in answers)
    # Not retried one by one: every retry would wait on the same dead database.
    assert Unreachable.calls == 1


@pytest.mark.parametrize("position", [0, 59])
async def test_the_poisoned_event_may_come_first_or_last(app, position):
    container = app.state.container
    ingestor = PoisonRefusing(container.ingestor.locator, container.ingestor.settings)
    batcher = LoginBatcher(container.db, ingestor, source="superman")
    events = [_event(n) for n in range(59)]
    events.insert(position, _event(999, POISON))
    answers = await asyncio.gather(*(batcher.submit(e) for e in events), return_exceptions=True)
    assert [isinstance(a, Exception) for a in answers].count(True) == 1
    assert isinstance(answers[position], ValueError)
