"""Several workers on one database, each with its own engine and connections, running their
real loops at once: every delivery is made exactly once and never by two at the same time."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Collection
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from globeguard.events.delivery.dispatcher import Dispatcher
from globeguard.events.models import Delivery, Subscription
from globeguard.wiring import build
from tests.events.support import Receiver, emit, subscribe, webhook_sinks

EVENTS = 150
# Upper bound on waiting for the workers, only so a bug cannot hang the suite.
PATIENCE_S = 120


class ConcurrencyProbe(Receiver):
    """Answers after yielding to the loop, so overlapping sends of one delivery would show."""

    def __init__(self) -> None:
        super().__init__()
        self.now_in_flight: Counter[str] = Counter()
        self.overlaps = 0

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        key = request.url.host + request.headers["webhook-id"]
        self.now_in_flight[key] += 1
        self.overlaps += self.now_in_flight[key] > 1
        await asyncio.sleep(0.001)
        self.now_in_flight[key] -= 1
        return self.handle(request)


async def _settled(container) -> int:
    async with container.db.read() as session:
        query = select(func.count()).where(Delivery.status == "succeeded")
        return int(await session.scalar(query.select_from(Delivery)) or 0)


async def test_two_workers_deliver_everything_once(app, container):
    await subscribe(container, "one", max_in_flight=8)
    await subscribe(container, "two", ordered=True)
    for i in range(EVENTS):
        await emit(container, uuid.UUID(int=i % 20 + 1))
    probe = ConcurrencyProbe()
    containers = [build(container.settings), build(container.settings)]
    workers = []
    for other in containers:
        sinks = webhook_sinks(probe, probe.handle_async)
        workers.append(Dispatcher(other.db, other.subscriptions, sinks, other.settings.delivery))
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        async with asyncio.timeout(PATIENCE_S):
            # Polling: the workers' commits happen on other engines, nothing here to await.
            while await _settled(container) < 2 * EVENTS:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for other in containers:
            await other.db.dispose()
    assert probe.overlaps == 0
    per_target = Counter((r.url, r.webhook_id) for r in probe.requests)
    assert len(per_target) == 2 * EVENTS
    assert set(per_target.values()) == {1}  # exactly once each
    async with container.db.read() as session:
        workers_used = set(await session.scalars(select(Delivery.lease_owner)))
    assert workers_used == {None}  # every lease released


async def test_a_commit_in_another_process_wakes_a_postgres_worker(app, container, backend):
    """A worker started apart from the API hears of committed events through NOTIFY, so it
    need not wait for its next poll; a rolled-back transaction notifies nobody."""
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    from sqlalchemy.engine import make_url

    from globeguard.events.catalog import EventType
    from globeguard.events.outbox import OutboxListener, record

    woken = asyncio.Event()
    heard: list[Collection[str] | None] = []

    def wake(types: Collection[str] | None) -> None:
        heard.append(types)
        woken.set()

    dsn = make_url(container.settings.db.url).set(drivername="postgresql")
    listener = asyncio.create_task(OutboxListener(dsn.render_as_string(False), wake).run())
    try:
        async with asyncio.timeout(PATIENCE_S):
            await woken.wait()  # the wake-up it gives itself on connecting
            woken.clear()
            with contextlib.suppress(RuntimeError):
                async with container.db.transaction() as session:
                    await record(
                        session,
                        EventType.USER_UPDATED,
                        actor="system",
                        aggregate_type="user",
                        aggregate_id="x",
                        user_id=None,
                        payload={},
                    )
                    raise RuntimeError("roll back")
            await emit(container, uuid.uuid4())
            await woken.wait()
        # Connecting (look at everything), then the committed event, by its type; the
        # rollback sent nothing.
        assert heard == [None, {str(EventType.USER_UPDATED)}]
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def test_a_running_worker_finds_events_nobody_told_it_about(app, container):
    """The loop fans out when woken, and otherwise at least once a poll interval: an event
    committed where no wake-up reaches this worker (another process, a lost NOTIFY) is still
    delivered, also while the worker is busy with other deliveries."""
    await subscribe(container, "hook")
    receiver = Receiver()
    worker = Dispatcher(
        container.db,
        container.subscriptions,
        webhook_sinks(receiver),
        container.settings.delivery.model_copy(update={"poll_interval": timedelta(seconds=0.05)}),
    )
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(PATIENCE_S):
            while worker.driver.fanned_out_at == float("-inf"):  # noqa: ASYNC110 - its first look
                await asyncio.sleep(0.01)
            first = await emit(container, uuid.uuid4())  # wakes only container.dispatcher
            while first not in receiver.ids():  # noqa: ASYNC110 - polling the fake receiver
                await asyncio.sleep(0.01)
            second = await emit(container, uuid.uuid4())
            worker.wake()
            while second not in receiver.ids():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert receiver.ids() == [first, second]


async def test_a_worker_that_found_the_subscription_locked_looks_again_soon(
    app, container, backend
):
    """Two workers woken for one event: one fans it out, but its claim is skipped because
    the other holds the subscription's lock, and the other cannot see the uncommitted rows.
    The skipped one must look again once the lock is free, not a poll interval later (an
    hour here: without that it would never get to it within the test)."""
    if backend != "postgresql":
        pytest.skip("row locks that claims skip are PostgreSQL's")
    await subscribe(container, "hook")
    receiver = Receiver()
    worker = Dispatcher(
        container.db,
        container.subscriptions,
        webhook_sinks(receiver),
        container.settings.delivery.model_copy(update={"poll_interval": timedelta(hours=1)}),
    )
    contended = asyncio.Event()
    cycle = worker.cycle

    async def watched(*args, **kwargs):
        done = await cycle(*args, **kwargs)
        if done.contended:
            contended.set()
        return done

    worker.cycle = watched  # type: ignore[method-assign]
    event = await emit(container, uuid.uuid4())
    other = build(container.settings)
    task = None
    try:
        async with asyncio.timeout(PATIENCE_S):
            async with other.db.transaction() as session:
                await session.execute(select(Subscription.id).with_for_update(key_share=True))
                task = asyncio.create_task(worker.run())
                await contended.wait()
                assert receiver.ids() == []
            while event not in receiver.ids():  # noqa: ASYNC110 - polling the fake receiver
                await asyncio.sleep(0.01)
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await other.db.dispose()
    assert receiver.ids() == [event]
