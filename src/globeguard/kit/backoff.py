"""Backoff: how long to wait before trying again. The one implementation of it; pure.

- `full_jitter`: exponential backoff with full jitter (AWS Architecture Blog, "Exponential
  Backoff And Jitter"): a uniform random wait in [0, min(cap, base * 2**attempt)]. Spreading
  the waits over the whole interval keeps many clients from retrying in lockstep (Auth0 job
  polls, whose rate limits punish exactly that; mail retries). A `Retry-After` from a 429
  overrides it (kit.retry_after).
- `jittered`: a wait from a fixed schedule moved by up to ±jitter of itself (webhook
  deliveries follow the Standard Webhooks schedule).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

# 2**64 overflows nothing in Python, but there is no point computing it.
MAX_EXPONENT = 62


def ceiling(attempt: int, base: float, cap: float) -> float:
    """The longest wait after `attempt` earlier waits (0-based)."""
    return min(cap, base * 2 ** min(attempt, MAX_EXPONENT))


def full_jitter(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """A wait in [0, ceiling]; `rand` returns a float in [0, 1) (random.random)."""
    return rand() * ceiling(attempt, base, cap)


def jittered(base: timedelta, jitter: float, sample: float) -> timedelta:
    """`base` moved by up to ±jitter of itself; `sample` is uniform in [-1, 1]."""
    return base * (1.0 + jitter * max(-1.0, min(1.0, sample)))
