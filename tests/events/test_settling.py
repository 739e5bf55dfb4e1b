"""Every send settles, whatever the receiver answers and whatever the sink raises: the slot
is freed and the attempt is recorded and rescheduled, so no receiver can stop delivery to
the others."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from globeguard.events.delivery.dispatcher import Dispatcher
from globeguard.events.models import Delivery, DeliveryAttempt
from globeguard.events.sinks.port import Message, SendResult
from tests.events.support import FakeClock, Receiver, dispatcher, emit, subscribe

# Only so a bug cannot hang the suite: the healthy delivery arrives in milliseconds.
PATIENCE_S = 60
HOSTILE = 30


async def _deliveries(container, subscription_id) -> list[Delivery]:
    async with container.db.read() as session:
        query = select(Delivery).where(Delivery.subscription_id == subscription_id)
        return list(await session.scalars(query))


async def _attempted(container) -> int:
    async with container.db.read() as session:
        query = select(func.count()).select_from(Delivery).where(Delivery.attempts > 0)
        return int(await session.scalar(query) or 0)


async def _run_until(pump: Dispatcher, done) -> None:
    task = asyncio.create_task(pump.run())
    try:
        async with asyncio.timeout(PATIENCE_S):
            # Polling: the loop commits through its own sessions, nothing here to await.
            while not await done():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_receivers_answering_retry_after_inf_do_not_stop_delivery(app, container):
    """30 receivers answer 429 with `Retry-After: inf` (more than the 8 slots): each attempt is
    recorded as throttled and retried in a minute or two, and a healthy subscription created
    afterwards still gets its event."""
    clock = FakeClock()
    hostile = [(await subscribe(container, f"hostile{i}"))[0] for i in range(HOSTILE)]

    def answer(request) -> httpx.Response:
        if "hostile" in request.url:
            return httpx.Response(429, headers={"Retry-After": "inf"})
        return httpx.Response(200)

    receiver = Receiver(answer)
    pump = dispatcher(container, receiver, clock, concurrency=8)
    await emit(container, uuid.uuid4())

    async def all_hostile_attempted() -> bool:
        return await _attempted(container) >= HOSTILE

    await _run_until(pump, all_hostile_attempted)
    assert not pump.driver.active  # every slot given back

    healthy, _ = await subscribe(container, "healthy")
    await emit(container, uuid.uuid4())

    async def healthy_delivered() -> bool:
        return any(d.status == "succeeded" for d in await _deliveries(container, healthy))

    await _run_until(pump, healthy_delivered)
    for subscription_id in hostile:
        delivery = min(await _deliveries(container, subscription_id), key=lambda d: d.event_seq)
        assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, 429)
        wait = delivery.next_attempt_at.replace(tzinfo=None) - clock.now.replace(tzinfo=None)
        assert timedelta(seconds=60) <= wait <= timedelta(seconds=120)


class Exploding:
    """A sink that raises something that is not an Exception."""

    class Boom(BaseException):
        pass

    async def send(self, message: Message) -> SendResult:
        raise self.Boom

    async def close(self) -> None:
        pass


async def test_a_sink_raising_a_base_exception_is_a_failed_attempt(app, container):
    clock = FakeClock()
    subscription_id, _ = await subscribe(container, "boom")
    pump = dispatcher(container, Receiver(), clock)
    pump.sinks = {"webhook": Exploding()}
    await emit(container, uuid.uuid4())

    await pump.run_once()

    (delivery,) = await _deliveries(container, subscription_id)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error == "internal: Boom"
    assert delivery.lease_owner is None
    wait = delivery.next_attempt_at.replace(tzinfo=None) - clock.now.replace(tzinfo=None)
    assert timedelta(seconds=4) <= wait <= timedelta(seconds=6)  # the schedule's first 5 s


async def test_the_run_loop_survives_a_base_exception_and_keeps_delivering(app, container):
    clock = FakeClock()
    boom, _ = await subscribe(container, "boom")
    pump = dispatcher(container, Receiver(), clock, concurrency=1)
    real = pump.sinks["webhook"]
    exploding = Exploding()

    class Split:
        async def send(self, message: Message) -> SendResult:
            sink = exploding if "boom" in message.target else real
            return await sink.send(message)

        async def close(self) -> None:
            pass

    pump.sinks = {"webhook": Split()}
    for _ in range(3):
        await emit(container, uuid.uuid4())

    async def boom_attempted() -> bool:
        return await _attempted(container) >= 3

    await _run_until(pump, boom_attempted)  # more failures than the one slot
    fine, _ = await subscribe(container, "fine")
    await emit(container, uuid.uuid4())

    async def fine_delivered() -> bool:
        return any(d.status == "succeeded" for d in await _deliveries(container, fine))

    await _run_until(pump, fine_delivered)
    attempts = [d.attempts for d in await _deliveries(container, boom)]
    assert attempts.count(1) >= 3 and max(attempts) == 1  # each failed once, rescheduled


async def test_an_answer_holding_a_nul_byte_is_recorded_and_settles(app, container):
    """A receiver's answer is stored as an excerpt; a NUL in it (which PostgreSQL's text and
    jsonb refuse) must not fail the settle, or every cycle would retry it and the delivery
    would be sent again and again."""
    clock = FakeClock()
    subscription_id, _ = await subscribe(container, "nul")
    receiver = Receiver(lambda _request: httpx.Response(200, content=b"ok\x00\x00then"))
    pump = dispatcher(container, receiver, clock)
    await emit(container, uuid.uuid4())

    async def delivered() -> bool:
        return any(d.status == "succeeded" for d in await _deliveries(container, subscription_id))

    await _run_until(pump, delivered)
    assert len(receiver.requests) == 1
    async with container.db.read() as session:
        (response,) = await session.scalars(
            select(DeliveryAttempt.response)
            .join(Delivery)
            .where(Delivery.subscription_id == subscription_id)
        )
    assert response is not None and "\x00" not in response
    assert response.startswith("ok") and response.endswith("then")
