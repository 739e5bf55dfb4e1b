"""A token bucket per subscription, in the dispatcher's process."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens a second, holding at most `burst` (one second's worth by default), so a
    receiver back from a pause is not hit by everything saved up at once."""

    def __init__(
        self, rate: float, burst: float | None = None, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._now = now
        self._tokens = self.burst
        self._at = now()

    def _refill(self) -> None:
        now = self._now()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def available(self) -> int:
        self._refill()
        return int(self._tokens)

    def take(self, count: int) -> None:
        self._refill()
        self._tokens -= count

    def wait_s(self) -> float:
        """Seconds until one token is there (0 when one already is)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
