"""Counters in this process's memory: correct for one process (the SQLite deployment)."""

from __future__ import annotations

import time
from collections.abc import Callable


class MemoryCounters:
    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._windows: dict[str, tuple[int, float]] = {}
        self.max_keys = max_keys
        self._clock = clock

    async def hit(self, key: str, window_s: float) -> int:
        now = self._clock()
        count, closes = self._windows.get(key, (0, 0.0))
        if closes <= now:
            count, closes = 0, now + window_s
            self._make_room(now)
        self._windows[key] = (count + 1, closes)
        return count + 1

    async def peek(self, key: str) -> tuple[int, float]:
        count, closes = self._windows.get(key, (0, 0.0))
        left = closes - self._clock()
        return (count, left) if left > 0 else (0, 0.0)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    async def close(self) -> None:
        self._windows.clear()

    def _make_room(self, now: float) -> None:
        """Drop closed windows, then the oldest keys, so an attacker spraying identifiers
        cannot grow memory without bound."""
        if len(self._windows) < self.max_keys:
            return
        for key in [k for k, (_, closes) in self._windows.items() if closes <= now]:
            del self._windows[key]
        while len(self._windows) >= self.max_keys:
            del self._windows[next(iter(self._windows))]
