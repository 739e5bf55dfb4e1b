"""A per-process cache whose entries expire after a TTL and are refreshed by one load.

Hot keys expire together under load: at 64 concurrent connections on one token, every
request in flight found the entry expired in the same instant and each read it again, 64
identical reads queued on 4 connections, and requests waited up to 2.4 s behind them every
2 s (measured with wrk on /users/me and POST /v1/). Here:

- `get_or_load` refreshes an entry in the background once it is past half its TTL, one
  refresh at a time, and keeps answering it until the refresh lands; an entry past its TTL
  is not answered: callers wait for one shared load;
- concurrent callers of `get_or_load` for an absent key share one load;
- entries carry tags, and `evict(tag)` drops every entry carrying it (a user id drops that
  user's sessions and API keys at once). An evicted value is never served again, and a load
  that was running when a tag was evicted is not kept when its result carries that tag.

`get_or_load` thus answers a value at most `ttl_s` after it was loaded. `get` and `put` are
the synchronous protocol of a caller that loads by itself: `get` answers None to the first
caller after expiry, who should load and `put`, and the previous value to the others
meanwhile (at most `ttl_s` more).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    loaded_at: float
    tags: tuple[str, ...]
    # When a caller took the refresh of this expired entry upon itself; None: nobody has.
    refreshing_since: float | None = None


class _Load(Generic[V]):
    """One load in flight, and what was evicted while it ran."""

    __slots__ = ("cleared", "evicted", "task")

    def __init__(self) -> None:
        self.evicted: set[str] = set()
        self.cleared = False
        self.task: asyncio.Task[V | None]


def _key_tag(key: object, _value: object) -> Iterable[str]:
    return (str(key),)


class TtlCache(Generic[K, V]):
    """`tags(key, value)` names what evicts an entry; by default its key as text. A
    `ttl_s` of 0 keeps nothing (concurrent misses still share their load)."""

    def __init__(
        self,
        ttl_s: float,
        max_entries: int,
        tags: Callable[[K, V], Iterable[str]] = _key_tag,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._tags_of = tags
        self._clock = clock
        self._entries: dict[K, _Entry[V]] = {}
        self._tagged: dict[str, set[K]] = {}
        # Loads new callers may join, and every load still running (joinable or not).
        self._joinable: dict[K, _Load[V]] = {}
        self._running: set[_Load[V]] = set()

    def get(self, key: K) -> V | None:
        """The value while fresh. Once expired: None to the first caller, who should load
        it and `put` it, and the previous value to everyone else in the meantime."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        if now - entry.loaded_at <= self.ttl_s:
            return entry.value
        since = entry.refreshing_since
        # A refresher that never came back (its request failed) is replaced after `ttl_s`.
        if since is not None and now - since <= self.ttl_s:
            return entry.value
        entry.refreshing_since = now
        return None

    def put(self, key: K, value: V) -> None:
        if self.ttl_s <= 0:
            return
        if key in self._entries:
            self._drop(key)
        elif len(self._entries) >= self.max_entries:
            self._drop(next(iter(self._entries)))  # the oldest
        tags = tuple(self._tags_of(key, value))
        self._entries[key] = _Entry(value, self._clock(), tags)
        for tag in tags:
            self._tagged.setdefault(tag, set()).add(key)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value, or `load()`'s, run once for all concurrent callers of this key.
        None (nothing to cache: the row is gone) is returned and drops the entry.

        Past half its `ttl_s`, an entry is refreshed in the background while it is still
        answered: nobody waits for the refresh. Under load a refresh waits its turn on the
        busy event loop and reader pool, and the caller that found the entry expired used
        to wait with it (85-280 ms on /users/me at 3,000 req/s, every `ttl_s`: the
        endpoint's slowest answers). Past `ttl_s` (the refresh failed or hangs) callers wait
        for a load, as for an absent key: a value is never answered later than `ttl_s`
        after it was loaded."""
        entry = self._entries.get(key)
        if entry is not None:
            age = self._clock() - entry.loaded_at
            if age <= self.ttl_s:
                if age > self.ttl_s / 2 and key not in self._joinable:
                    self._start(key, load)
                return entry.value
        running = self._joinable.get(key)
        if running is None:
            running = self._start(key, load)
        # A caller that goes away (a client hanging up) leaves the load to the others.
        return await asyncio.shield(running.task)

    def _start(self, key: K, load: Callable[[], Awaitable[V | None]]) -> _Load[V]:
        running: _Load[V] = _Load()

        async def run() -> V | None:
            try:
                value = await load()
            except BaseException:
                self._finish(key, running)
                self._release(key)
                raise
            self._finish(key, running)
            if value is None:
                self._drop(key)
            elif not running.cleared and running.evicted.isdisjoint(self._tags_of(key, value)):
                self.put(key, value)
            else:
                self._release(key)
            return value

        running.task = asyncio.get_running_loop().create_task(run())
        # Every caller may be gone when it fails: the error was theirs, not the log's.
        running.task.add_done_callback(_retrieve)
        self._joinable[key] = running
        self._running.add(running)
        return running

    def _finish(self, key: K, running: _Load[V]) -> None:
        self._running.discard(running)
        if self._joinable.get(key) is running:
            del self._joinable[key]

    def _release(self, key: K) -> None:
        """The refresh failed or was overtaken: the next caller tries again."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.refreshing_since = None

    async def close(self) -> None:
        """Stop the loads still running (background refreshes among them) and wait for them:
        a stopping process must not leave one holding a database connection."""
        tasks = [running.task for running in self._running]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def evict(self, tag: str) -> None:
        for key in list(self._tagged.get(tag, ())):
            self._drop(key)
        # A load running now may have read the state before the change that evicts: new
        # callers start their own, and its result is not kept if it carries the tag.
        for running in self._running:
            running.evicted.add(tag)
        self._joinable.clear()

    def clear(self) -> None:
        self._entries.clear()
        self._tagged.clear()
        for running in self._running:
            running.cleared = True
        self._joinable.clear()

    def _drop(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry.tags:
            keys = self._tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tagged[tag]

    def __len__(self) -> int:
        return len(self._entries)


def _retrieve(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        task.exception()
