"""Counters in this process's memory: correct for one process (the SQLite deployment).

Atomic without a lock: every method reads and writes its entry with no `await` in between,
so on the event loop that serves the requests no other caller can run in the middle of a
`reserve`. (Nothing calls these from worker threads.) A restart forgets everything at once:
the counts and the known-address sets together, so no account is left over a ceiling whose
known addresses were forgotten."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from globeguard.adapters.kv.port import Reservation


class MemoryCounters:
    def __init__(
        self,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        max_sets: int = 10_000,
    ):
        self._windows: dict[str, tuple[int, float]] = {}
        # Insertion order is the order of last addition: the first entry is evicted first.
        # 10k sets of 10 short members stay around 10 MB.
        self._sets: dict[str, tuple[dict[str, None], float]] = {}
        self.max_keys = max_keys
        self.max_sets = max_sets
        self._clock = clock

    async def hit(self, key: str, window_s: float) -> int:
        return self._count(key, None, window_s).count

    async def reserve(self, key: str, limit: int, window_s: float) -> Reservation:
        return self._count(key, limit, window_s)

    async def refund(self, key: str) -> None:
        count, closes = self._windows.get(key, (0, 0.0))
        if count > 0 and closes > self._clock():
            self._windows[key] = (count - 1, closes)

    async def peek(self, key: str) -> tuple[int, float]:
        count, closes = self._windows.get(key, (0, 0.0))
        left = closes - self._clock()
        return (count, left) if left > 0 else (0, 0.0)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)
        self._sets.pop(key, None)

    async def remember(self, key: str, member: str, keep: int, ttl_s: float) -> None:
        now = self._clock()
        members = self._live_members(key, now)
        self._sets.pop(key, None)  # re-inserted below: now the most recently added
        members.pop(member, None)
        members[member] = None
        while len(members) > keep:
            del members[next(iter(members))]
        _make_room(self._sets, self.max_sets, now)
        self._sets[key] = (members, now + ttl_s)

    async def recalls(self, key: str, member: str) -> bool:
        return member in self._live_members(key, self._clock())

    async def close(self) -> None:
        self._windows.clear()
        self._sets.clear()

    def _count(self, key: str, limit: int | None, window_s: float) -> Reservation:
        now = self._clock()
        count, closes = self._windows.get(key, (0, 0.0))
        if closes <= now:
            count, closes = 0, now + window_s
            _make_room(self._windows, self.max_keys, now)
        if limit is not None and count >= limit:
            return Reservation(taken=False, count=count, left_s=closes - now)
        self._windows[key] = (count + 1, closes)
        return Reservation(taken=True, count=count + 1, left_s=closes - now)

    def _live_members(self, key: str, now: float) -> dict[str, None]:
        members, expires = self._sets.get(key, ({}, 0.0))
        return members if expires > now else {}


def _make_room(entries: dict[str, tuple[Any, float]], max_keys: int, now: float) -> None:
    """Drop expired entries, then the oldest keys, so an attacker spraying identifiers
    cannot grow memory without bound."""
    if len(entries) < max_keys:
        return
    for key in [k for k, (_, expires) in entries.items() if expires <= now]:
        del entries[key]
    while len(entries) >= max_keys:
        del entries[next(iter(entries))]
