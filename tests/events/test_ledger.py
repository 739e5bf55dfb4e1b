"""The delivery ledger on both databases: idempotent fan-out, claims that never overlap,
leases that expire back to pending, poison that goes dead, late settlements that lose."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import event, func, select, update

from globeguard.events.catalog import EventType
from globeguard.events.delivery.ledger import LedgerRepository
from globeguard.events.models import Delivery, DeliveryAttempt, OutboxEvent
from globeguard.wiring import build
from tests.events.support import FakeClock, Receiver, dispatcher, emit, subscribe


async def _deliveries(container) -> list[Delivery]:
    async with container.db.read() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def test_fan_out_matches_filters_and_running_it_again_creates_nothing(app, container):
    clock = FakeClock()
    everything, _ = await subscribe(container, "all")
    signins, _ = await subscribe(container, "signins", event_types=["user.signin.*"])
    user = uuid.uuid4()
    await emit(container, user, EventType.USER_CREATED)
    await emit(container, user, EventType.SIGNIN_FAILED)
    await emit(container, user, EventType.SIGNIN_SUCCEEDED)
    pump = dispatcher(container, Receiver(), clock)
    assert (await pump.claim_round(capacity=0)).fanned_out == 3
    first = [(d.event_seq, d.subscription_id) for d in await _deliveries(container)]
    assert sorted(s for _, s in first).count(everything) == 3
    assert sorted(s for _, s in first).count(signins) == 2

    # A crash after inserting deliveries but before stamping the outbox: fan-out runs again.
    async with container.db.transaction() as session:
        await session.execute(update(OutboxEvent).values(dispatched_at=None))
    assert (await pump.claim_round(capacity=0)).fanned_out == 3
    assert [(d.event_seq, d.subscription_id) for d in await _deliveries(container)] == first
    assert (await pump.claim_round(capacity=0)).fanned_out == 0


async def test_two_concurrent_claimers_never_take_the_same_delivery(app, container, backend):
    await subscribe(container, "busy", max_in_flight=1000)
    for _ in range(120):
        await emit(container, uuid.uuid4())
    # A second process's worth of everything: its own engine and connections.
    other = build(container.settings)
    statements: list[str] = []

    def spy(_conn, _cursor, statement, *_args):
        if "UPDATE delivery SET status" in statement:
            statements.append(statement)

    event.listen(container.db.engine.sync_engine, "before_cursor_execute", spy)
    clock = FakeClock()
    workers = [
        dispatcher(container, Receiver(), clock, worker_id="a", claim_batch=7),
        dispatcher(other, Receiver(), clock, worker_id="b", claim_batch=7),
    ]
    claims: dict[str, list[int]] = {"a": [], "b": []}

    async def claim_all(worker) -> None:
        for _ in range(200):
            done = await worker.claim_round(capacity=7)
            claims[worker.worker_id] += [job.claimed.id for job in done.jobs]
            if not done.jobs and done.fanned_out == 0:
                remaining = [d for d in await _deliveries(container) if d.status == "pending"]
                if not remaining:
                    return
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(claim_all(w) for w in workers))
    finally:
        event.remove(container.db.engine.sync_engine, "before_cursor_execute", spy)
        await other.db.dispose()
    a, b = set(claims["a"]), set(claims["b"])
    assert len(a) == len(claims["a"]) and len(b) == len(claims["b"])
    assert not a & b
    assert len(a | b) == 120
    owners = {d.id: d.lease_owner for d in await _deliveries(container)}
    assert all(owners[i] == "a" for i in a) and all(owners[i] == "b" for i in b)
    claim_sql = " ".join(statements)
    assert "RETURNING" in claim_sql
    assert ("FOR UPDATE SKIP LOCKED" in claim_sql) == (backend == "postgresql")


async def test_an_expired_lease_returns_to_pending_and_repeated_expiry_is_poison(app, container):
    clock = FakeClock()
    await subscribe(container, "hook")
    await emit(container, uuid.uuid4())
    receiver = Receiver()
    pump = dispatcher(container, receiver, clock, max_lease_expiries=3)
    lease = container.settings.delivery.lease
    for expiry in (1, 2):
        assert len((await pump.claim_round()).jobs) == 1  # claimed, then the worker "dies"
        clock.advance(lease - timedelta(seconds=1))
        assert (await pump.claim_round()).reclaimed == 0  # the lease still holds
        clock.advance(timedelta(seconds=2))
        done = await pump.claim_round(capacity=0)
        assert done.reclaimed == 1
        (delivery,) = await _deliveries(container)
        assert (delivery.status, delivery.lease_expiries) == ("pending", expiry)
    await pump.claim_round()
    clock.advance(lease + timedelta(seconds=1))
    await pump.claim_round()
    (delivery,) = await _deliveries(container)
    assert (delivery.status, delivery.dead_reason, delivery.attempts) == (
        "dead",
        "poison_worker",
        0,
    )
    assert receiver.requests == []


async def test_a_late_settlement_from_a_lost_lease_changes_nothing(app, container):
    clock = FakeClock()
    await subscribe(container, "hook")
    await emit(container, uuid.uuid4())
    slow = dispatcher(container, Receiver(), clock, worker_id="slow")
    fast = dispatcher(container, Receiver(), clock, worker_id="fast")
    (stale,) = (await slow.claim_round()).jobs
    clock.advance(container.settings.delivery.lease + timedelta(seconds=1))
    (fresh,) = (await fast.claim_round()).jobs
    assert fresh.claimed.id == stale.claimed.id
    late = await slow.send(stale)
    await slow.settle([late])
    (delivery,) = await _deliveries(container)
    assert (delivery.status, delivery.lease_owner) == ("inflight", "fast")
    await fast.settle([await fast.send(fresh)])
    (delivery,) = await _deliveries(container)
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    async with container.db.read() as session:
        workers = list(await session.scalars(select(DeliveryAttempt.worker)))
    assert sorted(workers) == ["fast", "slow"]  # both tries are on record


async def test_max_in_flight_bounds_claims_per_subscription(app, container):
    clock = FakeClock()
    await subscribe(container, "narrow", max_in_flight=3)
    for _ in range(10):
        await emit(container, uuid.uuid4())
    pump = dispatcher(container, Receiver(), clock)
    assert len((await pump.claim_round()).jobs) == 3
    assert len((await pump.claim_round()).jobs) == 0
    async with container.db.read() as session:
        assert (
            await LedgerRepository(session).in_flight(
                (await _deliveries(container))[0].subscription_id
            )
            == 3
        )
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 10
