"""What happens after an attempt: the pure decision, no I/O, tested by tables and hypothesis.

The default schedule is the Standard Webhooks example cut to 8 attempts (Svix's): retries after
5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, about 27.6 h in all, long enough to ride out a
receiver's bad day and short enough that the dead-letter alarm fires the next morning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from globeguard.kit.backoff import jittered


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # failed; another attempt is scheduled
    THROTTLED = "throttled"  # 429/502/503/504 or a timeout: the receiver needs air
    GONE = "gone"  # 410: the receiver asked us to stop for good
    EXHAUSTED = "exhausted"  # failed and no attempt is left


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    DEAD = "dead"


DEFAULT_SCHEDULE: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000)
)
# ±20 %: retries of deliveries that failed together (a receiver outage) spread out instead of
# arriving as one wave when it comes back.
DEFAULT_JITTER = 0.2
# A throttling receiver is not retried sooner than this, whatever the schedule says.
THROTTLE_MIN_DELAY = timedelta(seconds=60)
THROTTLING_STATUSES = frozenset({429, 502, 503, 504})
GONE_STATUS = 410


@dataclass(frozen=True, slots=True)
class Response:
    """What one attempt saw: an HTTP status (None when no response came) and the receiver's
    Retry-After in seconds, if it sent one."""

    status: int | None
    retry_after_s: float | None = None
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    outcome: Outcome
    delay: timedelta | None = None  # until the next attempt, when verdict is RETRY
    disable_subscription: bool = False
    dead_reason: str | None = None


# Most attempts succeed: they share one (frozen) decision instead of making one each.
_DELIVERED = Decision(Verdict.SUCCEEDED, Outcome.DELIVERED)


def classify(response: Response) -> Outcome:
    if response.status is not None and 200 <= response.status < 300:
        return Outcome.DELIVERED
    if response.status == GONE_STATUS:
        return Outcome.GONE
    if response.timed_out or response.status in THROTTLING_STATUSES:
        return Outcome.THROTTLED
    # 3xx counts as failure: we never follow redirects (they could point anywhere).
    return Outcome.RETRY


def throttled_delay(base: timedelta, retry_after_s: float | None) -> timedelta:
    """At least THROTTLE_MIN_DELAY; a Retry-After is honoured within [floor, 2 * floor], so a
    receiver can slow us down, yet neither stall a delivery beyond twice its schedule nor
    make us retry sooner than planned. A value that is not a finite number is ignored."""
    floor = max(base, THROTTLE_MIN_DELAY)
    if retry_after_s is None or not math.isfinite(retry_after_s):
        return floor
    # Clamped in float seconds first: timedelta(seconds=1e300) raises OverflowError.
    seconds = min(max(0.0, retry_after_s), (2 * floor).total_seconds())
    return max(timedelta(seconds=seconds), floor)


def decide(
    attempts_done: int,
    response: Response,
    schedule: Sequence[timedelta] = DEFAULT_SCHEDULE,
    *,
    jitter: float = DEFAULT_JITTER,
    sample: float = 0.0,
) -> Decision:
    """The verdict after attempt number `attempts_done` (1 = the first one). A delivery gets
    `len(schedule) + 1` attempts: the first, then one after each delay."""
    outcome = classify(response)
    if outcome is Outcome.DELIVERED:
        return _DELIVERED
    if outcome is Outcome.GONE:
        return Decision(Verdict.DEAD, outcome, disable_subscription=True, dead_reason="gone_410")
    if attempts_done > len(schedule):
        return Decision(Verdict.DEAD, Outcome.EXHAUSTED, dead_reason="exhausted")
    delay = jittered(schedule[attempts_done - 1], jitter, sample)
    if outcome is Outcome.THROTTLED:
        delay = throttled_delay(delay, response.retry_after_s)
    return Decision(Verdict.RETRY, outcome, delay=delay)
