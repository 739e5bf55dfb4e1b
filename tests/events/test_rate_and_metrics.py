"""Per-subscription rate limits, and the pipeline's gauges and counters on /metrics."""

from __future__ import annotations

import uuid

import httpx
from hypothesis import given
from hypothesis import strategies as st

from globeguard.kit.bucket import TokenBucket
from tests.events.support import FakeClock, Receiver, dispatcher, emit, subscribe
from tests.helpers import bearer, make_admin


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_holds_one_second_and_refills_at_its_rate():
    ticks = Ticks()
    bucket = TokenBucket(10, now=ticks)
    assert bucket.available() == 10
    bucket.take(10)
    assert bucket.available() == 0 and bucket.wait_s() == 0.1
    ticks.now = 0.35
    assert bucket.available() == 3
    ticks.now = 100
    assert bucket.available() == 10  # saving up stops at the burst


@given(st.floats(0.5, 1000), st.lists(st.floats(0, 5), max_size=30))
def test_a_bucket_never_grants_more_than_burst_plus_rate_times_time(rate, steps):
    ticks = Ticks()
    bucket = TokenBucket(rate, now=ticks)
    granted = 0
    for step in steps:
        ticks.now += step
        n = bucket.available()
        bucket.take(n)
        granted += n
    assert granted <= max(1.0, rate) + rate * ticks.now + 1e-6


async def test_rate_limit_caps_each_round(app, container):
    await subscribe(container, "slow", rate_limit_per_s=3)
    for _ in range(10):
        await emit(container, uuid.uuid4())
    pump = dispatcher(container, Receiver(), FakeClock())
    assert len((await pump.claim_round()).jobs) == 3  # one second's worth, at once
    assert len((await pump.claim_round()).jobs) == 0


async def test_metrics_show_lag_dead_letters_and_attempts(client, container):
    admin = bearer(await make_admin(client, container))
    await dispatcher(container, Receiver(), FakeClock()).drain()  # the admin's own events
    sub, _ = await subscribe(container, "gone")
    await emit(container, uuid.uuid4())
    clock = FakeClock()
    await dispatcher(container, Receiver(lambda r: httpx.Response(410)), clock).drain()
    text = (await client.get("/metrics", headers=admin)).text
    assert f'globeguard_delivery_dead{{subscription="{sub}"}} 1.0' in text
    assert f'globeguard_delivery_lag_seconds{{subscription="{sub}"}} 0.0' in text
    assert 'globeguard_delivery_attempts_total{outcome="gone"} 1.0' in text
    assert "globeguard_outbox_oldest_undispatched_seconds 0.0" in text
