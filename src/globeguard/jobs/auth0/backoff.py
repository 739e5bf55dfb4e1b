"""How long to wait between polls of an Auth0 job: exponential backoff with full jitter
(AWS Architecture Blog, "Exponential Backoff And Jitter"): wait a uniform random time in
[0, min(cap, base * 2**attempt)]. Spreading the waits over the whole interval keeps many
pollers from hitting the Management API in lockstep, which is what its rate limits punish.
A `Retry-After` from a 429 overrides the schedule (read by kit.retry_after)."""

from __future__ import annotations

from collections.abc import Callable

# 2**64 overflows nothing in Python, but there is no point computing it.
MAX_EXPONENT = 62


def ceiling(attempt: int, base: float, cap: float) -> float:
    """The longest wait after `attempt` earlier waits (0-based)."""
    return min(cap, base * 2 ** min(attempt, MAX_EXPONENT))


def full_jitter(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """A wait in [0, ceiling]; `rand` returns a float in [0, 1) (random.random)."""
    return rand() * ceiling(attempt, base, cap)
