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
        for key in ("a", "b", "w", "r", "s"):
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


async def test_reserve_takes_slots_up_to_the_limit(counters):
    taken = [await counters.reserve("r", 3, 60) for _ in range(5)]
    assert [r.taken for r in taken] == [True, True, True, False, False]
    assert [r.count for r in taken] == [1, 2, 3, 3, 3]  # a refusal counts nothing
    assert all(0 < r.left_s <= 60 for r in taken)
    assert (await counters.peek("r"))[0] == 3


async def test_concurrent_reservations_never_pass_the_limit(counters):
    taken = await asyncio.gather(*(counters.reserve("r", 10, 60) for _ in range(60)))
    assert sum(r.taken for r in taken) == 10
    assert sorted(r.count for r in taken if r.taken) == list(range(1, 11))


async def test_a_refund_gives_one_slot_back(counters):
    for _ in range(3):
        await counters.reserve("r", 3, 60)
    await counters.refund("r")
    assert (await counters.peek("r"))[0] == 2
    assert (await counters.reserve("r", 3, 60)).taken
    assert not (await counters.reserve("r", 3, 60)).taken


async def test_a_refund_never_goes_below_zero_nor_opens_a_window(counters):
    await counters.refund("b")
    assert await counters.peek("b") == (0, 0.0)
    await counters.reserve("r", 3, 60)
    await counters.refund("r")
    await counters.refund("r")
    assert (await counters.peek("r"))[0] == 0
    assert (await counters.reserve("r", 1, 60)).count == 1


async def test_a_refund_after_the_window_closed_changes_nothing(counters):
    await counters.reserve("w", 3, 0.2)
    await asyncio.sleep(0.35)
    await counters.refund("w")
    assert await counters.peek("w") == (0, 0.0)
    assert (await counters.reserve("w", 3, 60)).count == 1


async def test_hit_and_reserve_share_the_count(counters):
    await counters.hit("r", 60)
    await counters.hit("r", 60)
    assert (await counters.reserve("r", 3, 60)).count == 3
    assert not (await counters.reserve("r", 3, 60)).taken


async def test_a_set_recalls_what_it_was_told(counters):
    assert not await counters.recalls("s", "x")
    await counters.remember("s", "x", 3, 60)
    assert await counters.recalls("s", "x")
    assert not await counters.recalls("s", "y")
    assert not await counters.recalls("b", "x")


async def test_a_set_keeps_only_the_most_recent_members(counters):
    for member in "wxyz":
        await counters.remember("s", member, 3, 60)
    assert not await counters.recalls("s", "w")
    # remembering again makes a member recent: "x" survives the next addition, "y" does not
    await counters.remember("s", "x", 3, 60)
    await counters.remember("s", "v", 3, 60)
    assert [await counters.recalls("s", m) for m in "vxyz"] == [True, True, False, True]


async def test_a_set_is_forgotten_after_its_ttl_and_on_reset(counters):
    await counters.remember("s", "x", 3, 0.2)
    await asyncio.sleep(0.35)
    assert not await counters.recalls("s", "x")
    await counters.remember("s", "x", 3, 60)
    await counters.reset("s")
    assert not await counters.recalls("s", "x")


async def test_memory_store_is_bounded():
    store = MemoryCounters(max_keys=3)
    for key in "wxyz":
        await store.hit(key, 60)
    assert len(store._windows) == 3
    assert await store.peek("w") == (0, 0.0)  # the oldest went first


async def test_memory_sets_are_bounded():
    store = MemoryCounters(max_sets=2)
    for key in "xyz":
        await store.remember(key, "m", 3, 60)
    assert len(store._sets) == 2
    assert not await store.recalls("x", "m")  # the least recently told went first


async def test_an_unreachable_redis_is_a_503_not_a_crash():
    from globeguard.adapters.kv.redis import CountersUnavailable

    store = RedisCounters("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        with pytest.raises(CountersUnavailable) as refused:
            await store.reserve("r", 3, 60)
        assert refused.value.status == 503 and refused.value.headers["Retry-After"]
    finally:
        await store.close()
