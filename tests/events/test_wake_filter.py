"""A commit wakes the in-process dispatcher only for events some enabled subscription listens
to: a sign-in where nothing listens to sign-ins costs no delivery cycle of its own. The events
nobody listens to are still fanned out (to nobody) and marked dispatched, by the cycle the
poll interval brings."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable, Collection
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from globeguard.events.catalog import EventType
from globeguard.events.models import OutboxEvent
from globeguard.events.outbox import ANY_TYPE, OutboxListener, heard_types, notify_payload
from tests.events.support import FakeClock, Receiver, dispatcher, emit, subscribe
from tests.helpers import make_admin, signin, signup

DELETED_ONLY = {"event_types": [str(EventType.USER_DELETED)]}
SIGNED_IN = str(EventType.SIGNIN_SUCCEEDED)


async def test_a_wake_for_events_nobody_listens_to_is_not_taken(app, container):
    await subscribe(container, "deletions", **DELETED_ONLY)
    pump = dispatcher(container, Receiver(), FakeClock())
    woken = pump.driver.woken

    pump.wake({"user.updated"})
    assert woken.is_set()  # who listens is not known before a cycle has read it
    await pump.claim_round()

    woken.clear()
    pump.wake({"user.updated", "user.signin.succeeded"})
    assert not woken.is_set()
    pump.wake({"user.updated", "user.deleted"})
    assert woken.is_set()

    woken.clear()
    pump.wake(None)  # a NOTIFY, or subscriptions changed: look, and read them again
    assert woken.is_set()
    woken.clear()
    pump.wake({"user.updated"})
    assert woken.is_set()


async def test_a_cycle_that_read_subscriptions_before_they_changed_keeps_no_view(
    app, container, monkeypatch
):
    """A change committed while a cycle runs must not be hidden by that cycle's older read."""
    await subscribe(container, "deletions", **DELETED_ONLY)
    pump = dispatcher(container, Receiver(), FakeClock())
    read = pump._targets

    async def changed_meanwhile(*args: Any) -> Any:
        targets = await read(*args)
        pump.wake(None)
        return targets

    monkeypatch.setattr(pump, "_targets", changed_meanwhile)
    await pump.claim_round()
    pump.driver.woken.clear()
    pump.wake({"user.updated"})
    assert pump.driver.woken.is_set()


async def test_commits_wake_the_running_dispatcher_for_what_its_subscriptions_take(
    app, client, container, monkeypatch
):
    admin = await make_admin(client, container)
    running = container.dispatcher
    driving = asyncio.create_task(running.run())  # as `serve` runs it
    try:
        created = await client.post(
            "/api/v1/subscriptions",
            json={"name": "deletions", "target": "http://deletions.test/hook", **DELETED_ONLY},
            headers={"Authorization": f"Bearer {admin['access_token']}"},
        )
        assert created.status_code == 201, created.text
        # The creation's commit had it read its subscriptions again.
        await _until(lambda: running._listening == [(str(EventType.USER_DELETED),)])
        wakes: list[None] = []
        wake = running.driver.wake
        monkeypatch.setattr(running.driver, "wake", lambda: (wakes.append(None), wake()))
        await signup(client, "quiet")
        await signin(client, "quiet")
        assert wakes == []
        await emit(container, uuid.uuid4(), EventType.USER_DELETED)
        assert wakes == [None]
        # The sign-in's event goes to nobody, and is marked dispatched all the same.
        await _until(lambda: _dispatched(container, EventType.SIGNIN_SUCCEEDED))
    finally:
        driving.cancel()
        await asyncio.gather(driving, return_exceptions=True)


async def _dispatched(container: Any, type_: EventType) -> bool:
    async with container.db.read() as session:
        rows = await session.execute(
            select(OutboxEvent.dispatched_at).where(OutboxEvent.type == str(type_))
        )
        times = [at for (at,) in rows.all()]
    return bool(times) and all(at is not None for at in times)


async def _until(condition: Callable[[], Any], turns: int = 1000) -> None:
    """Until `condition()` (or what it returns, awaited) is true, looking every 10 ms."""
    for _ in range(turns):
        outcome = condition()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never came true")


# -- other processes: the NOTIFY names the committed events' types ----------------------------


@pytest.mark.parametrize(
    ("types", "changed", "payload"),
    [
        ({"user.updated"}, False, "user.updated"),
        ({"user.updated", "user.deleted"}, False, "user.deleted,user.updated"),
        ({"user.updated"}, True, ANY_TYPE),  # subscriptions changed: read them again
        (set(), True, ANY_TYPE),
        ({f"user.type{n:04}" for n in range(400)}, False, ANY_TYPE),  # too long for a NOTIFY
    ],
)
def test_a_notify_names_the_types_it_commits(types, changed, payload):
    assert notify_payload(types, subscriptions_changed=changed) == payload


@given(st.sets(st.sampled_from([str(t) for t in EventType]), min_size=1))
def test_the_types_a_notify_names_are_those_heard(types):
    assert heard_types(notify_payload(types, subscriptions_changed=False)) == types


def test_a_notify_naming_nothing_is_a_look_at_everything():
    assert heard_types(ANY_TYPE) is None
    assert heard_types("") is None  # a process of an earlier version NOTIFYs no payload


async def test_a_notify_names_the_types_committed_and_says_when_subscriptions_changed(
    app, client, container, backend
):
    """On PostgreSQL every writing commit NOTIFYs every process (this one too). A NOTIFY that
    named nothing made each dispatcher run a whole cycle (five statements) per sign-in where
    nothing listens to sign-ins; naming the types lets each filter them as it does a commit
    of its own (test_a_wake_for_events_nobody_listens_to_is_not_taken)."""
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    from sqlalchemy.engine import make_url

    heard: list[Collection[str] | None] = []
    news = asyncio.Event()

    def hear(types: Collection[str] | None) -> None:
        heard.append(types)
        news.set()

    async def until(done: Callable[[], bool]) -> None:
        while not done():
            news.clear()
            await news.wait()

    dsn = make_url(container.settings.db.url).set(drivername="postgresql")
    listener = asyncio.create_task(OutboxListener(dsn.render_as_string(False), hear).run())
    try:
        async with asyncio.timeout(60):
            await until(lambda: bool(heard))  # connected: a wake-up for anything meanwhile
            assert heard == [None]
            heard.clear()
            await signup(client, "notified")
            await signin(client, "notified")
            await until(lambda: any(types and SIGNED_IN in types for types in heard))
            assert None not in heard, heard  # nothing woke a dispatcher for everything
            heard.clear()
            admin = await make_admin(client, container)
            created = await client.post(
                "/api/v1/subscriptions",
                json={"name": "d", "target": "http://d.test/hook", **DELETED_ONLY},
                headers={"Authorization": f"Bearer {admin['access_token']}"},
            )
            assert created.status_code == 201, created.text
            # A new subscription: every process reads subscriptions again, at once.
            await until(lambda: None in heard)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
