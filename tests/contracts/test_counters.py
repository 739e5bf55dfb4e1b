"""The counter store contract, over every adapter: in-memory always, Redis when
GLOBEGUARD_TEST_REDIS_URL is set (`make test` sets it; in CI a missing Redis fails)."""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from globeguard.adapters.kv.memory import MemoryCounters
from globeguard.adapters.kv.redis import RedisCounters

REDIS_ENV = "GLOBEGUARD_TEST_REDIS_URL"


def _adapters() -> list[str]:
    if os.environ.get(REDIS_ENV):
        return ["memory", "redis"]
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI=true but {REDIS_ENV} is not set")
    return ["memory"]


@pytest.fixture(params=_adapters())
async def counters(request):
    if request.param == "memory":
        store = MemoryCounters()
    else:
        # A prefix per test: runs never see each other's keys.
        store = RedisCounters(os.environ[REDIS_ENV], prefix=f"gg-test-{secrets.token_hex(4)}:")
    try:
        yield store
    finally:
        for key in ("a", "b", "w"):
            await store.reset(key)
        await store.close()


async def test_hits_count_within_a_window(counters):
    assert [await counters.hit("a", 60) for _ in range(3)] == [1, 2, 3]
    count, left = await counters.peek("a")
    assert count == 3 and 0 < left <= 60
    assert await counters.peek("b") == (0, 0.0)


async def test_reset_forgets(counters):
    await counters.hit("a", 60)
    await counters.reset("a")
    assert await counters.peek("a") == (0, 0.0)
    assert await counters.hit("a", 60) == 1


async def test_the_window_closes_and_counting_restarts(counters):
    await counters.hit("w", 0.2)
    await counters.hit("w", 0.2)
    await asyncio.sleep(0.35)
    assert await counters.peek("w") == (0, 0.0)
    assert await counters.hit("w", 0.2) == 1


async def test_memory_store_is_bounded():
    store = MemoryCounters(max_keys=3)
    for key in "wxyz":
        await store.hit(key, 60)
    assert len(store._windows) == 3
    assert await store.peek("w") == (0, 0.0)  # the oldest went first
