"""Token buckets: `rate` tokens per second refill a bucket of `burst`; a request takes one.

The core (`take`) is a pure function of the bucket, the time and the limits, so it is tested
by tables and properties with a clock the test controls. `TokenBuckets` keeps one bucket per
key in process memory: with N processes a key gets N times the rate, which the seed's own
limiter (API Gateway, per region) did not promise to prevent either.
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


def refill(bucket: Bucket | None, now: float, rate: float, burst: int) -> Bucket:
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
