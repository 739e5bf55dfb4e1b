"""The counter store port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of `Counters.reserve`: whether the slot was taken, the count in the window
    after the call, and the seconds until the window closes (for Retry-After)."""

    taken: bool
    count: int
    left_s: float


class Counters(Protocol):
    async def hit(self, key: str, window_s: float) -> int:
        """Count one more; the first hit opens a window of `window_s` seconds, after which
        the count starts again from zero. Returns the count in the current window."""
        ...

    async def reserve(self, key: str, limit: int, window_s: float) -> Reservation:
        """Count one more unless the window already holds `limit`: compare and count in one
        step that no other caller, in this process or another, can interleave with, so at
        most `limit` reservations are taken per window however many arrive at once. The
        first one opens a window of `window_s` seconds."""
        ...

    async def refund(self, key: str) -> None:
        """Give back one count of the current window; never below zero, and nothing once
        the window has closed."""
        ...

    async def peek(self, key: str) -> tuple[int, float]:
        """(count in the current window, seconds until it closes); (0, 0) when none."""
        ...

    async def reset(self, key: str) -> None:
        """Forget the key's window."""
        ...

    async def remember(self, key: str, member: str, keep: int, ttl_s: float) -> None:
        """Add `member` to the small set under `key`, keeping the `keep` most recently added
        and forgetting the whole set `ttl_s` seconds after its last addition."""
        ...

    async def recalls(self, key: str, member: str) -> bool:
        """Whether `member` is in the set under `key` (see `remember`)."""
        ...

    async def close(self) -> None: ...
