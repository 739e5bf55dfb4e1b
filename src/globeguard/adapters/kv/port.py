"""The counter store port."""

from __future__ import annotations

from typing import Protocol


class Counters(Protocol):
    async def hit(self, key: str, window_s: float) -> int:
        """Count one more; the first hit opens a window of `window_s` seconds, after which
        the count starts again from zero. Returns the count in the current window."""
        ...

    async def peek(self, key: str) -> tuple[int, float]:
        """(count in the current window, seconds until it closes); (0, 0) when none."""
        ...

    async def reset(self, key: str) -> None:
        """Forget the key's window."""
        ...

    async def close(self) -> None: ...
