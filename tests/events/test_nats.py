"""The NATS JetStream sink against a real server (GLOBEGUARD_TEST_NATS_URL; CI fails without
it, elsewhere these tests skip). Each test makes a stream with a random name and deletes it."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest

from globeguard.events.sinks.nats import NatsSink
from globeguard.events.sinks.port import Message
from tests.events.conftest import NATS_ENV
from tests.events.support import FakeClock, emit

NATS_URL = os.environ.get(NATS_ENV)
if not NATS_URL and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI=true but {NATS_ENV} is not set: the NATS tests cannot run")
pytestmark = pytest.mark.skipif(not NATS_URL, reason=f"{NATS_ENV} not set")


@pytest.fixture
async def stream() -> AsyncIterator[tuple[object, str]]:
    import nats

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    prefix = f"ggtest_{secrets.token_hex(4)}"
    await js.add_stream(name=prefix.upper(), subjects=[f"{prefix}.>"])
    try:
        yield js, prefix
    finally:
        await js.delete_stream(prefix.upper())
        await nc.close()


async def _messages(js, prefix: str) -> list:
    sub = await js.pull_subscribe(f"{prefix}.>", durable=None)
    try:
        return await sub.fetch(50, timeout=2)
    except Exception:  # nats raises a timeout when fewer than asked for are there
        return []
    finally:
        await sub.unsubscribe()


async def test_published_on_ack_with_the_event_id_and_deduplicated(stream):
    js, prefix = stream
    sink = NatsSink(NATS_URL, timeout_s=5)
    message = Message("evt_TEST1", "user.created", prefix, b'{"id":"evt_TEST1"}')
    try:
        first = await sink.send(message)
        again = await sink.send(message)  # a redelivery after a lost ack
    finally:
        await sink.close()
    assert first.status == 200 and again.status == 200
    assert again.response is not None and "duplicate" in again.response
    (got,) = await _messages(js, prefix)
    assert got.subject == f"{prefix}.user.created"
    assert got.headers["Nats-Msg-Id"] == "evt_TEST1"
    assert got.data == b'{"id":"evt_TEST1"}'


async def test_no_stream_is_a_failed_attempt_not_a_delivery():
    sink = NatsSink(NATS_URL, timeout_s=2)
    try:
        result = await sink.send(
            Message("evt_X", "user.created", f"nostream_{secrets.token_hex(4)}", b"{}")
        )
    finally:
        await sink.close()
    assert result.status is None and result.error


async def test_a_nats_subscription_through_the_dispatcher(app, container, stream):
    js, prefix = stream
    from globeguard.events.delivery.dispatcher import Dispatcher
    from globeguard.events.subscriptions.schemas import SubscriptionCreate

    async with container.db.transaction() as session:
        await container.subscriptions.create(
            session, SubscriptionCreate(name="bus", kind="nats", target=prefix)
        )
    event_id = await emit(container, uuid.uuid4())
    pump = Dispatcher(
        container.db,
        container.subscriptions,
        container.sinks,
        container.settings.delivery,
        clock=FakeClock(),
    )
    assert await pump.drain() == 1
    (got,) = await _messages(js, prefix)
    assert got.headers["Nats-Msg-Id"] == event_id
    assert got.subject == f"{prefix}.user.updated"
