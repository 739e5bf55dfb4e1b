"""The dispatcher's whole-batch statements on both databases: a claim's events are read in the
claim itself, a settle batch keeps the row-by-row outcome, a cycle reads its subscriptions
before settling and still claims nothing for one its settling just disabled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from globeguard.events import envelope
from globeguard.events.catalog import EventType
from globeguard.events.delivery import ledger
from globeguard.events.models import Delivery, DeliveryAttempt, OutboxEvent, Subscription
from globeguard.events.outbox import record_many
from tests.events.support import FakeClock, Receiver, dispatcher, emit, subscribe, user_event
from tests.writer_trips import writer_trips


async def _rows(container, model, *order):
    async with container.db.read() as session:
        return list(await session.scalars(select(model).order_by(*order)))


async def test_a_claimed_job_carries_the_event_as_stored(app, container):
    """The claim returns the event's columns itself (SQLite: as JSON from RETURNING,
    PostgreSQL: joined): the bytes sent equal the envelope of the stored row, personal data
    included or not, with or without a version."""
    clock = FakeClock()
    await subscribe(container, "private")
    await subscribe(container, "pii", include_pii=True)
    user = uuid.uuid4()
    await emit(container, user, EventType.USER_UPDATED, version=7, email="a@example.test")
    await emit(container, user, EventType.USER_CREATED, username='ünïcode "quoted"')
    stored = await _rows(container, OutboxEvent, OutboxEvent.seq)
    done = await dispatcher(container, Receiver(), clock).claim_round()
    assert len(done.jobs) == 4
    for job in done.jobs:
        (row,) = [r for r in stored if r.seq == job.event.seq]
        assert job.body == envelope.body(row, include_pii=job.target.include_pii)
        assert job.event.occurred_at == row.occurred_at
        assert job.event.occurred_at.utcoffset() == timedelta(0)
    bodies = {job.body for job in done.jobs}
    assert any(b"a@example.test" in b for b in bodies)
    assert sum(b"a@example.test" in b for b in bodies) == 1  # only the pii subscription's


async def test_a_backlog_is_claimed_oldest_event_first(app, container):
    clock = FakeClock()
    await subscribe(container, "hook", max_in_flight=100)
    ids = [await emit(container, uuid.uuid4()) for _ in range(12)]
    pump = dispatcher(container, Receiver(), clock)
    claimed = []
    for _ in range(4):
        claimed += [job.event.event_id for job in (await pump.claim_round(capacity=3)).jobs]
    assert claimed == ids


async def test_two_attempts_of_one_delivery_in_a_batch_settle_as_the_first(app, container):
    """Its lease ran out and the same worker claimed it again, so both attempts end in one
    settle batch: the first settles it (as row-by-row updates did), both are on record."""
    clock = FakeClock()
    await subscribe(container, "hook")
    await emit(container, uuid.uuid4())
    answers = iter([httpx.Response(500), httpx.Response(200)])
    pump = dispatcher(container, Receiver(lambda r: next(answers)), clock)
    (first,) = (await pump.claim_round()).jobs
    clock.advance(container.settings.delivery.lease + timedelta(seconds=1))
    (again,) = (await pump.claim_round()).jobs
    assert again.claimed.id == first.claimed.id
    failed, succeeded = await pump.send(first), await pump.send(again)
    await pump.settle([failed, succeeded])
    (delivery,) = await _rows(container, Delivery, Delivery.id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
    attempts = await _rows(container, DeliveryAttempt, DeliveryAttempt.id)
    assert [a.status_code for a in attempts] == [500, 200]


async def test_a_cycle_claims_nothing_for_a_subscription_its_settling_disabled(app, container):
    clock = FakeClock()
    gone, _ = await subscribe(container, "gone")
    for _ in range(3):
        await emit(container, uuid.uuid4())
    pump = dispatcher(container, Receiver(lambda r: httpx.Response(410)), clock)
    first = (await pump.claim_round(capacity=1)).jobs
    settled = [await pump.send(job) for job in first]
    done = await pump.cycle(settled, capacity=10)
    assert done.jobs == []
    async with container.db.read() as session:
        subscription = await session.get(Subscription, gone)
    assert subscription is not None and subscription.disabled_reason == "gone_410"


async def test_a_success_in_a_cycle_ends_the_failure_run(app, container):
    clock = FakeClock()
    sub, _ = await subscribe(container, "flaky")
    await emit(container, uuid.uuid4())
    await emit(container, uuid.uuid4())
    answers = iter([httpx.Response(500), httpx.Response(200)])
    pump = dispatcher(container, Receiver(lambda r: next(answers)), clock)
    (job,) = (await pump.claim_round(capacity=1)).jobs
    done = await pump.cycle([await pump.send(job)], capacity=1)
    (subscription,) = await _rows(container, Subscription, Subscription.id)
    assert subscription.failing_since == clock.now
    (job,) = done.jobs
    await pump.cycle([await pump.send(job)], capacity=0)
    (subscription,) = await _rows(container, Subscription, Subscription.id)
    assert subscription.id == sub and subscription.failing_since is None


async def test_settling_remakes_what_a_new_sqlite_connection_lacks(app, container, backend):
    """SQLite settles through a TEMP view and trigger of the writer connection; a connection
    without them (new, or whose first settling transaction rolled back) makes them again."""
    if backend != "sqlite":
        pytest.skip("TEMP objects are the SQLite path's")
    clock = FakeClock()
    await subscribe(container, "hook")
    for _ in range(2):
        await emit(container, uuid.uuid4())
    pump = dispatcher(container, Receiver(), clock)
    first, second = (await pump.claim_round()).jobs
    await pump.settle([await pump.send(first)])
    async with container.db.transaction() as session:
        await session.execute(text("DROP VIEW temp.settle_attempt"))  # its trigger goes too
    await pump.settle([await pump.send(second)])
    statuses = [d.status for d in await _rows(container, Delivery, Delivery.id)]
    assert statuses == ["succeeded", "succeeded"]
    assert len(await _rows(container, DeliveryAttempt, DeliveryAttempt.id)) == 2


async def test_a_settle_batch_stores_every_field_as_it_came(app, container):
    """The batch goes to the database as one JSON text: quotes, backslashes, non-ASCII text,
    nulls and times with their microseconds arrive as they were, on both databases."""
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC))
    await subscribe(container, "odd")
    await emit(container, uuid.uuid4())
    await emit(container, uuid.uuid4())
    text = 'say "no" \\ to ünïcödé ✓ {"json": [1]}'
    answers = iter([httpx.Response(500, text=text), httpx.Response(204)])
    pump = dispatcher(container, Receiver(lambda r: next(answers)), clock)
    jobs = (await pump.claim_round()).jobs
    settled = [await pump.send(job) for job in jobs]
    await pump.settle(settled)
    failed, succeeded = sorted(await _rows(container, Delivery, Delivery.id), key=_by_status)
    assert (failed.status, failed.last_status, failed.finished_at) == ("pending", 500, None)
    assert failed.next_attempt_at > clock.now and failed.dead_reason is None
    assert (succeeded.status, succeeded.last_status) == ("succeeded", 204)
    assert succeeded.finished_at == clock.now == succeeded.next_attempt_at
    attempts = {
        a.status_code: a for a in await _rows(container, DeliveryAttempt, DeliveryAttempt.id)
    }
    assert attempts[500].response == text and attempts[500].attempted_at == clock.now
    assert attempts[204].response == "" and attempts[204].error is None
    assert [settlement.delivery_id for settlement in settled] == [j.claimed.id for j in jobs]


def _by_status(delivery: Delivery) -> str:
    return delivery.status


async def test_a_settle_that_fails_takes_its_cycles_claim_with_it(app, container, backend):
    """On SQLite the settle rides along with the cycle's claim (one hop to the writer): when
    it fails the cycle fails whole, and what the claim would have leased stays pending."""
    if backend != "sqlite":
        pytest.skip("the deferred settle is the SQLite path's")
    clock = FakeClock()
    await subscribe(container, "hook")
    for _ in range(2):
        await emit(container, uuid.uuid4())
    pump = dispatcher(container, Receiver(), clock)
    (first,) = (await pump.claim_round(capacity=1)).jobs
    settled = await pump.send(first)
    with (
        patch.object(ledger, "_SETTLE_SQL", "INSERT INTO no_such_table VALUES (1)"),
        pytest.raises(OperationalError, match="no_such_table"),
    ):
        await pump.cycle([settled], capacity=1)
    statuses = [d.status for d in await _rows(container, Delivery, Delivery.id)]
    assert statuses == ["inflight", "pending"]
    done = await pump.cycle([settled], capacity=1)
    assert [d.status for d in await _rows(container, Delivery, Delivery.id)] == [
        "succeeded",
        "inflight",
    ]
    assert len(done.jobs) == 1


async def test_fan_out_writes_ride_along_with_the_cycles_next_statement(app, container, backend):
    """On SQLite the fan-out's INSERT of deliveries and UPDATE of the outbox are writes whose
    results nobody reads: they go to the writer thread with the statement after them (the
    claim), not on trips of their own, and the claim sees the deliveries they made."""
    if backend != "sqlite":
        pytest.skip("the writer thread is SQLite's")
    await subscribe(container, "hook")
    await emit(container, uuid.uuid4())
    await emit(container, uuid.uuid4())
    db = container.db
    await db.engine.dispose()
    with writer_trips(db) as trips:
        done = await dispatcher(container, Receiver(), FakeClock()).claim_round()
    assert len(done.jobs) == 2  # the claim found what the deferred fan-out inserted
    fan_out = [
        trip
        for trip in trips
        if any(s.startswith(("INSERT INTO delivery", "UPDATE event_outbox")) for s in trip)
    ]
    assert len(fan_out) == 1
    (trip,) = fan_out
    last = max(
        i
        for i, s in enumerate(trip)
        if s.startswith(("INSERT INTO delivery", "UPDATE event_outbox"))
    )
    assert last < len(trip) - 1  # something rode after them: they did not travel alone
    statuses = [d.status for d in await _rows(container, Delivery, Delivery.id)]
    assert statuses == ["inflight", "inflight"]
    dispatched = [e.dispatched_at for e in await _rows(container, OutboxEvent, OutboxEvent.seq)]
    assert all(at is not None for at in dispatched)


async def test_an_outbox_event_is_seen_by_its_transaction_and_fails_it_when_refused(app, container):
    """The outbox INSERT rides along with the next statement on SQLite: a read later in the
    transaction sees the event, and a row the database refuses (here a repeated event id)
    fails the transaction, which keeps nothing it wrote."""
    user = uuid.uuid4()
    first = await emit(container, user)
    async with container.db.transaction() as session:
        await record_many(session, [user_event(user)])
        seen = await session.scalar(select(func.count()).select_from(OutboxEvent))
    assert seen == 2

    async def repeat() -> None:
        async with container.db.transaction() as session:
            await record_many(session, [user_event(user), {**user_event(user), "event_id": first}])

    with pytest.raises(IntegrityError):
        await repeat()
    assert len(await _rows(container, OutboxEvent, OutboxEvent.seq)) == 2
