"""The TTL cache behind access-token state, API keys and /users/me: one load per key at a time,
refreshed in the background past half its TTL, never answered past it, and evictions that
always win."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from globeguard.kit.ttl_cache import TtlCache

TTL = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A database stand-in: counts loads, and holds each until released."""

    def __init__(self, value: str | None = "v1") -> None:
        self.value = value
        self.loads = 0
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    def loader(self) -> Callable[[], Awaitable[str | None]]:
        async def load() -> str | None:
            self.loads += 1
            await self.gate.wait()
            if self.fail is not None:
                raise self.fail
            return self.value

        return load


async def settle() -> None:
    """Let every started task run up to where it waits."""
    for _ in range(20):
        await asyncio.sleep(0)


def cache(clock: Clock, ttl: float = TTL) -> TtlCache[str, str]:
    return TtlCache(ttl, 100, clock=clock)


async def test_concurrent_misses_of_an_absent_key_share_one_load():
    source = Source()
    c = cache(Clock())
    callers = [asyncio.create_task(c.get_or_load("k", source.loader())) for _ in range(50)]
    await settle()
    source.gate.set()
    assert await asyncio.gather(*callers) == ["v1"] * 50
    assert source.loads == 1
    assert await c.get_or_load("k", source.loader()) == "v1"
    assert source.loads == 1


async def test_past_half_its_ttl_an_entry_is_refreshed_once_and_nobody_waits_for_it():
    clock, source = Clock(), Source()
    c = cache(clock)
    c.put("k", "v0")
    clock.now += TTL * 0.75
    # The first caller past half the TTL starts the refresh and gets the value at once.
    assert await c.get_or_load("k", source.loader()) == "v0"
    await settle()
    assert source.loads == 1
    # The refresh is running: 50 more callers neither wait nor load.
    others = [await c.get_or_load("k", source.loader()) for _ in range(50)]
    assert others == ["v0"] * 50 and source.loads == 1
    source.gate.set()
    await settle()
    assert await c.get_or_load("k", source.loader()) == "v1"
    assert source.loads == 1


async def test_a_fresh_entry_is_not_refreshed():
    clock, source = Clock(), Source()
    c = cache(clock)
    c.put("k", "v0")
    clock.now += TTL * 0.5
    assert await c.get_or_load("k", source.loader()) == "v0"
    await settle()
    assert source.loads == 0


async def test_past_its_ttl_an_entry_is_not_answered_callers_share_one_load():
    clock, source = Clock(), Source()
    c = cache(clock)
    c.put("k", "v0")
    clock.now += TTL + 0.1
    callers = [asyncio.create_task(c.get_or_load("k", source.loader())) for _ in range(20)]
    await settle()
    assert not any(caller.done() for caller in callers)  # no "v0": it is too old
    source.gate.set()
    assert await asyncio.gather(*callers) == ["v1"] * 20
    assert source.loads == 1


async def test_a_failed_background_refresh_fails_nobody_and_the_next_caller_tries_again():
    clock, source = Clock(), Source()
    c = cache(clock)
    c.put("k", "v0")
    clock.now += TTL * 0.75
    source.fail = ConnectionError("database down")
    source.gate.set()
    assert await c.get_or_load("k", source.loader()) == "v0"
    await settle()
    assert source.loads == 1
    source.fail = None
    assert await c.get_or_load("k", source.loader()) == "v0"  # and a new refresh starts
    await settle()
    assert source.loads == 2
    assert await c.get_or_load("k", source.loader()) == "v1"


async def test_a_failed_refresh_fails_its_caller_only_and_the_next_caller_tries_again():
    clock, source = Clock(), Source()
    c = cache(clock)
    c.put("k", "v0")
    clock.now += TTL + 0.1
    source.fail = ConnectionError("database down")
    source.gate.set()
    with pytest.raises(ConnectionError):
        await c.get_or_load("k", source.loader())
    source.fail = None
    assert await c.get_or_load("k", source.loader()) == "v1"
    assert source.loads == 2


async def test_a_caller_going_away_leaves_the_load_to_the_others():
    source = Source()
    c = cache(Clock())
    first = asyncio.create_task(c.get_or_load("k", source.loader()))
    await settle()
    second = asyncio.create_task(c.get_or_load("k", source.loader()))
    await settle()
    first.cancel()
    source.gate.set()
    assert await second == "v1"
    assert source.loads == 1


async def test_without_callers_a_refresher_that_never_returns_is_replaced_after_the_ttl():
    """The synchronous protocol (`get`, then `put`) of a caller whose request failed."""
    clock = Clock()
    c = cache(clock)
    c.put("k", "v0")
    clock.now += TTL + 0.1
    assert c.get("k") is None  # this caller refreshes...
    assert [c.get("k") for _ in range(5)] == ["v0"] * 5  # ...the others get the old value
    clock.now += TTL + 0.1  # ...and it never puts anything
    assert c.get("k") is None
    c.put("k", "v1")
    assert c.get("k") == "v1"


async def test_eviction_drops_every_entry_carrying_the_tag():
    c: TtlCache[tuple[str, str], str] = TtlCache(
        TTL, 100, tags=lambda key, _v: (key[0], f"session:{key[1]}"), clock=Clock()
    )
    c.put(("u1", "s1"), "a")
    c.put(("u1", "s2"), "b")
    c.put(("u2", "s3"), "c")
    c.evict("session:s1")
    assert c.get(("u1", "s1")) is None and c.get(("u1", "s2")) == "b"
    c.evict("u1")
    assert c.get(("u1", "s2")) is None and c.get(("u2", "s3")) == "c"
    assert len(c) == 1


async def test_an_evicted_entry_is_never_served_stale():
    clock, source = Clock(), Source()
    c = cache(clock)
    c.put("k", "v0")
    clock.now += TTL + 0.1
    refresher = asyncio.create_task(c.get_or_load("k", source.loader()))
    await settle()
    c.evict("k")  # a change committed while the refresh reads
    later = asyncio.create_task(c.get_or_load("k", source.loader()))
    await settle()
    assert not later.done()  # no "v0" for it: it waits for a load of its own
    source.gate.set()
    await refresher
    await later
    assert source.loads == 2


async def test_a_load_running_when_its_tag_is_evicted_is_not_kept():
    source = Source()
    c = cache(Clock())
    first = asyncio.create_task(c.get_or_load("k", source.loader()))
    await settle()
    c.evict("k")
    source.gate.set()
    assert await first == "v1"
    assert c.get("k") is None  # read before the change: not remembered
    await c.get_or_load("k", source.loader())
    assert source.loads == 2 and c.get("k") == "v1"


async def test_an_unrelated_eviction_keeps_a_running_load():
    source = Source()
    c = cache(Clock())
    first = asyncio.create_task(c.get_or_load("k", source.loader()))
    await settle()
    c.evict("other")
    source.gate.set()
    await first
    assert c.get("k") == "v1"


async def test_clear_wins_over_a_running_load():
    source = Source()
    c = cache(Clock())
    first = asyncio.create_task(c.get_or_load("k", source.loader()))
    await settle()
    c.clear()
    source.gate.set()
    await first
    assert c.get("k") is None


async def test_a_value_gone_from_the_source_is_dropped_not_served_stale():
    clock, source = Clock(), Source(value=None)
    c = cache(clock)
    c.put("k", "v0")
    clock.now += TTL + 0.1
    source.gate.set()
    assert await c.get_or_load("k", source.loader()) is None
    assert c.get("k") is None and len(c) == 0


def test_entries_expire_and_the_cache_is_bounded():
    clock = Clock()
    c: TtlCache[str, str] = TtlCache(TTL, 3, clock=clock)
    for i in range(5):
        c.put(f"k{i}", "v")
    assert len(c) == 3 and c.get("k0") is None and c.get("k4") == "v"
    clock.now += TTL + 0.1
    assert c.get("k4") is None


async def test_a_zero_ttl_keeps_nothing():
    source = Source()
    source.gate.set()
    c = cache(Clock(), ttl=0)
    assert await c.get_or_load("k", source.loader()) == "v1"
    assert await c.get_or_load("k", source.loader()) == "v1"
    assert source.loads == 2 and len(c) == 0
