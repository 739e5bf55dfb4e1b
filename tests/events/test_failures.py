"""The failures the pipeline must survive, on SQLite and PostgreSQL, with a clock that moves
only when the test says so: a receiver down for a day, throttling, 410, a poison event, per-user
order, redelivery keeping its webhook-id, redrive delivering exactly once more."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from itertools import pairwise

import httpx
from sqlalchemy import select

from globeguard.events.catalog import EventType
from globeguard.events.delivery.service import BacklogGauges
from globeguard.events.models import Delivery, DeliveryAttempt, Subscription
from globeguard.webhooks.verify import verify
from tests.events.support import FakeClock, Received, Receiver, dispatcher, emit, subscribe

SCHEDULE_S = [5, 300, 1800, 7200, 18000, 36000, 36000]


async def _delivery(container, subscription_id) -> list[Delivery]:
    async with container.db.read() as session:
        query = select(Delivery).where(Delivery.subscription_id == subscription_id)
        return list(await session.scalars(query.order_by(Delivery.event_seq)))


async def _subscription(container, subscription_id) -> Subscription:
    async with container.db.read() as session:
        found = await session.get(Subscription, subscription_id)
        assert found is not None
        return found


def _next_due(pending: list[Delivery], clock: FakeClock):
    """The next moment something waiting becomes due (a user's later events, held back
    behind their head on an ordered subscription, are due already)."""
    return min(d.next_attempt_at for d in pending if d.next_attempt_at > clock.now)


def _gauge(container, family, subscription_id) -> float:
    return dict(getattr(container.metrics, family)._samples)[(str(subscription_id),)]


async def test_receiver_down_for_a_day_then_redrive(app, container):
    clock = FakeClock()
    down, secret = await subscribe(container, "down")
    up, _ = await subscribe(container, "up")
    receiver = Receiver(
        lambda r: httpx.Response(503 if "down.test" in r.url else 200, text="x" * 5000)
    )
    pump = dispatcher(container, receiver, clock)
    gauges = BacklogGauges(container.db, container.metrics, clock)
    event_id = await emit(container, uuid.uuid4())

    attempt_times = []
    lags = []
    while True:
        await pump.drain()
        attempt_times.append(clock.now)
        await gauges.refresh()
        lags.append(_gauge(container, "delivery_lag", down))
        (delivery,) = await _delivery(container, down)
        if delivery.status != "pending":
            break
        clock.to(delivery.next_attempt_at)

    assert (delivery.status, delivery.dead_reason, delivery.attempts) == ("dead", "exhausted", 8)
    gaps = [(b - a).total_seconds() for a, b in pairwise(attempt_times)]
    for gap, planned in zip(gaps, SCHEDULE_S, strict=True):
        # ±20 % jitter; a 503 is throttling, so never sooner than a minute.
        assert max(planned * 0.8, 60) <= gap <= max(planned * 1.2, 120)
    assert sum(gaps) >= 0.8 * sum(SCHEDULE_S)  # 22 to 33 hours of trying
    # The lag alarm's gauge rises with every failed attempt; dead, the delivery leaves the
    # queue (it is counted by the DLQ gauge instead).
    waited = [(t - attempt_times[0]).total_seconds() for t in attempt_times]
    assert lags[:-1] == waited[:-1]  # the age of the oldest pending delivery
    assert lags[-2] > 12 * 3600 and lags[-1] == 0
    assert _gauge(container, "delivery_dead", down) == 1
    assert _gauge(container, "delivery_dead", up) == 0
    assert len(receiver.to("up.test")) == 1  # the other subscriber got it at once, once
    assert len(receiver.to("down.test")) == 8

    async with container.db.read() as session:
        attempts = list(
            await session.scalars(
                select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery.id)
            )
        )
    assert [a.status_code for a in attempts] == [503] * 8
    assert {a.outcome for a in attempts} == {"throttled", "exhausted"}
    assert all(a.response is not None and len(a.response) == 1000 for a in attempts)

    # Back up; the admin redrives the dead letter.
    receiver.answer = lambda r: httpx.Response(204)
    async with container.db.transaction() as session:
        done = await container.deliveries.redrive(session, subscription_id=down)
    assert done.count == 1
    await pump.drain()
    last = receiver.to("down.test")[-1]
    verify(last.body, last.headers, [secret], now=clock.now.timestamp())
    clock.advance(timedelta(hours=30))
    await pump.drain()  # nothing more is due, ever
    assert len(receiver.to("down.test")) == 9
    assert receiver.ids("down.test") == [event_id] * 9  # the same webhook-id every time
    assert len(receiver.to("up.test")) == 1
    (delivery,) = await _delivery(container, down)
    assert (delivery.status, delivery.redrives) == ("succeeded", 1)
    await gauges.refresh()
    assert _gauge(container, "delivery_dead", down) == 0


async def test_retry_after_and_410(app, container):
    clock = FakeClock()
    slow, _ = await subscribe(container, "slow")
    gone, _ = await subscribe(container, "gone")

    def answer(r: Received) -> httpx.Response:
        if "slow.test" in r.url:
            return httpx.Response(429, headers={"Retry-After": "90"})
        if "gone.test" in r.url:
            return httpx.Response(410)
        return httpx.Response(200)

    pump = dispatcher(container, Receiver(answer), clock)
    await emit(container, uuid.uuid4())
    await pump.drain()
    (throttled,) = await _delivery(container, slow)
    assert throttled.status == "pending"
    assert throttled.next_attempt_at - clock.now == timedelta(seconds=90)
    (dead,) = await _delivery(container, gone)
    assert (dead.status, dead.dead_reason) == ("dead", "gone_410")
    subscription = await _subscription(container, gone)
    assert subscription.disabled_reason == "gone_410"
    # A disabled subscription gets nothing new; the other one keeps going.
    await emit(container, uuid.uuid4())
    await pump.drain()
    assert len(await _delivery(container, gone)) == 1
    assert len(await _delivery(container, slow)) == 2


async def test_sustained_failure_disables_and_enabling_resumes(app, container):
    clock = FakeClock()
    sub, _ = await subscribe(container, "flaky")
    receiver = Receiver(lambda r: httpx.Response(500))
    pump = dispatcher(container, receiver, clock, disable_after=timedelta(hours=1))
    await emit(container, uuid.uuid4())
    await pump.drain()
    assert (await _subscription(container, sub)).failing_since == clock.now
    for _ in range(4):
        (delivery,) = await _delivery(container, sub)
        clock.to(delivery.next_attempt_at)
        await pump.drain()
    subscription = await _subscription(container, sub)
    # Failing since the first attempt; the fourth came 5 s + 5 min + 30 min later (±20 %),
    # the fifth 2 h later: past the hour, so it is disabled.
    assert subscription.disabled_reason == "failing"
    (delivery,) = await _delivery(container, sub)
    assert delivery.status == "pending"  # held, not dropped
    held = len(receiver.requests)
    clock.advance(timedelta(days=1))
    await pump.drain()
    assert len(receiver.requests) == held  # nothing goes to a disabled subscription

    receiver.answer = lambda r: httpx.Response(200)
    async with container.db.transaction() as session:
        from globeguard.events.subscriptions.schemas import SubscriptionUpdate

        await container.subscriptions.update(session, sub, SubscriptionUpdate(enabled=True))
    await pump.drain()
    (delivery,) = await _delivery(container, sub)
    assert delivery.status == "succeeded"
    assert (await _subscription(container, sub)).failing_since is None


async def test_a_poison_event_blocks_neither_other_users_nor_other_events(app, container):
    clock = FakeClock()
    ordered, _ = await subscribe(container, "ordered", ordered=True)
    await subscribe(container, "loose")
    poisoned, healthy = uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
    poison = await emit(container, poisoned, poison=True)
    after_poison = await emit(container, poisoned)
    fine = [await emit(container, user) for user in healthy]
    receiver = Receiver(lambda r: httpx.Response(500 if b'"poison"' in r.body else 200))
    pump = dispatcher(container, receiver, clock)
    await pump.drain()
    # Everyone else's events went through at once, on both subscriptions.
    assert set(fine) <= set(receiver.ids("ordered.test"))
    assert {*fine, after_poison} <= set(receiver.ids("loose.test"))
    # On the ordered one, the poisoned user's next event waits behind the failing head...
    assert after_poison not in receiver.ids("ordered.test")
    while True:
        heads = [d for d in await _delivery(container, ordered) if d.status == "pending"]
        if not heads:
            break
        clock.to(_next_due(heads, clock))
        await pump.drain()
    # ...until the head is dead; then the user's stream goes on.
    statuses = {d.event_seq: d.status for d in await _delivery(container, ordered)}
    assert sorted(statuses.values()).count("dead") == 1
    assert receiver.ids("ordered.test").count(poison) == 8
    assert receiver.ids("ordered.test")[-1] == after_poison


async def test_an_ordered_subscription_keeps_each_users_order_through_failures(app, container):
    clock = FakeClock()
    sub, _ = await subscribe(container, "ordered", ordered=True, max_in_flight=50)
    users = [uuid.uuid4() for _ in range(4)]
    sent: dict[uuid.UUID, list[str]] = defaultdict(list)
    for version in range(1, 7):
        for user in users:
            sent[user].append(await emit(container, user, version=version))
    failed_once: set[str] = set()

    def answer(r: Received) -> httpx.Response:
        # Every third event fails its first attempt.
        if r.webhook_id not in failed_once and int(r.webhook_id[-1], 36) % 3 == 0:
            failed_once.add(r.webhook_id)
            return httpx.Response(500)
        return httpx.Response(200)

    receiver = Receiver(answer)
    pump = dispatcher(container, receiver, clock)
    in_flight_per_user: list[int] = []
    while True:
        done = await pump.claim_round()
        per_user = defaultdict(int)
        for job in done.jobs:
            per_user[job.event.aggregate_id] += 1
        in_flight_per_user += list(per_user.values())
        await pump.settle([await pump.send(job) for job in done.jobs])
        pending = [d for d in await _delivery(container, sub) if d.status == "pending"]
        if not pending:
            break
        if not done.jobs:
            clock.to(_next_due(pending, clock))
    assert failed_once  # the scenario did include failures
    assert max(in_flight_per_user) == 1  # never two of one user's events in flight
    delivered: dict[uuid.UUID, list[str]] = defaultdict(list)
    owner = {event_id: user for user, ids in sent.items() for event_id in ids}
    for got in receiver.requests:
        delivered[owner[got.webhook_id]].append(got.webhook_id)
    for user in users:
        # Dedupe retries (receivers do, on webhook-id): what remains is the commit order.
        assert list(dict.fromkeys(delivered[user])) == sent[user]


async def test_a_redelivery_keeps_its_webhook_id_with_a_fresh_timestamp(app, container):
    clock = FakeClock()
    _, secret = await subscribe(container, "hook", event_types=["user.**"])
    answers = iter([httpx.Response(500), httpx.Response(200)])
    receiver = Receiver(lambda r: next(answers))
    pump = dispatcher(container, receiver, clock)
    event_id = await emit(container, uuid.uuid4(), EventType.USER_CREATED, username="paul")
    await pump.drain()
    clock.advance(timedelta(seconds=10))
    await pump.drain()
    first, second = receiver.requests
    assert first.webhook_id == second.webhook_id == event_id
    assert first.body == second.body
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 10
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    for got, at in ((first, clock.now - timedelta(seconds=10)), (second, clock.now)):
        verify(got.body, got.headers, [secret], now=at.timestamp())
    assert b"paul" not in first.body  # no personal data for a subscriber not allowed it
