"""Token buckets: `rate` tokens per second refill a bucket of `burst`. The one implementation
of them.

The core (`refill`, `take`) is a pure function of the bucket, the time and the limits, so it
is tested by tables and properties with a clock the test controls. `TokenBuckets` keeps one
bucket per key in process memory (ingestion's per-API-key limit: with N processes a key gets N
times the rate, which the seed's own limiter, API Gateway per region, did not promise to
prevent either). `TokenBucket` is one bucket held in place that may go into debt (a webhook
dispatcher takes a whole batch at once and waits it off).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    at: float  # seconds on the caller's monotonic clock


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    # Seconds until one token is back; 0 when allowed.
    retry_after_s: float

    @property
    def retry_after_header(self) -> int:
        """Whole seconds, rounded up and at least 1: `Retry-After: 0` invites a hot loop."""
        return max(1, math.ceil(self.retry_after_s))


def refill(bucket: Bucket | None, now: float, rate: float, burst: float) -> Bucket:
    """The bucket as it stands at `now`; a new key starts full."""
    if bucket is None:
        return Bucket(float(burst), now)
    # A clock that steps back (it should not, being monotonic) refills nothing.
    elapsed = max(0.0, now - bucket.at)
    return Bucket(min(float(burst), bucket.tokens + elapsed * rate), max(now, bucket.at))


def take(bucket: Bucket | None, now: float, rate: float, burst: int) -> tuple[Bucket, Decision]:
    current = refill(bucket, now, rate, burst)
    if current.tokens >= 1.0:
        return Bucket(current.tokens - 1.0, current.at), Decision(True, 0.0)
    return current, Decision(False, (1.0 - current.tokens) / rate)


class TokenBuckets:
    def __init__(
        self,
        rate: float,
        burst: int,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        # Least recently used first, so the coldest buckets go first when space runs out.
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str) -> Decision:
        now = self.clock()
        bucket, decision = take(self._buckets.pop(key, None), now, self.rate, self.burst)
        if len(self._buckets) >= self.max_keys:
            self._evict(now)
        self._buckets[key] = bucket
        return decision

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now: float) -> None:
        # A full bucket holds no information (a new one starts full), so forget those first;
        # only when every tracked key is busy does the least recently used lose its state.
        # Down to 90 %, so a table of busy keys is not swept again on the very next request.
        full = [key for key, bucket in self._buckets.items() if self._is_full(bucket, now)]
        for key in full:
            del self._buckets[key]
        target = self.max_keys - max(1, self.max_keys // 10)
        while len(self._buckets) > target:
            self._buckets.popitem(last=False)

    def _is_full(self, bucket: Bucket, now: float) -> bool:
        return refill(bucket, now, self.rate, self.burst).tokens >= self.burst


class TokenBucket:
    """`rate` tokens a second, holding at most `burst` (one second's worth by default), so a
    receiver back from a pause is not hit by everything saved up at once."""

    def __init__(
        self, rate: float, burst: float | None = None, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._now = now
        self._state = Bucket(self.burst, now())

    def _refilled(self) -> Bucket:
        self._state = refill(self._state, self._now(), self.rate, self.burst)
        return self._state

    def available(self) -> int:
        return int(self._refilled().tokens)

    def take(self, count: int) -> None:
        """Take `count` tokens, going below zero if need be: the debt is waited off."""
        current = self._refilled()
        self._state = Bucket(current.tokens - count, current.at)

    def wait_s(self) -> float:
        """Seconds until one token is there (0 when one already is)."""
        tokens = self._refilled().tokens
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate
