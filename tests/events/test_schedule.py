"""The retry decision: tables for each kind of answer, properties for the jitter bounds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.events.delivery.schedule import (
    DEFAULT_SCHEDULE,
    THROTTLE_MIN_DELAY,
    Outcome,
    Response,
    Verdict,
    decide,
)

S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("status", "outcome", "verdict"),
    [
        (200, Outcome.DELIVERED, Verdict.SUCCEEDED),
        (204, Outcome.DELIVERED, Verdict.SUCCEEDED),
        (301, Outcome.RETRY, Verdict.RETRY),  # redirects are never followed
        (400, Outcome.RETRY, Verdict.RETRY),
        (500, Outcome.RETRY, Verdict.RETRY),
        (410, Outcome.GONE, Verdict.DEAD),
        (429, Outcome.THROTTLED, Verdict.RETRY),
        (502, Outcome.THROTTLED, Verdict.RETRY),
        (503, Outcome.THROTTLED, Verdict.RETRY),
        (504, Outcome.THROTTLED, Verdict.RETRY),
        (None, Outcome.RETRY, Verdict.RETRY),  # connection refused
    ],
)
def test_first_attempt_by_status(status, outcome, verdict):
    decision = decide(1, Response(status))
    assert (decision.outcome, decision.verdict) == (outcome, verdict)
    assert decision.disable_subscription == (status == 410)


def test_retries_follow_the_schedule_without_jitter_then_die_exhausted():
    delays = [decide(n, Response(500), jitter=0).delay for n in range(1, 8)]
    assert delays == [5 * S, 300 * S, 1800 * S, 7200 * S, 18000 * S, 36000 * S, 36000 * S]
    last = decide(8, Response(500))
    assert (last.verdict, last.outcome, last.dead_reason) == (
        Verdict.DEAD,
        Outcome.EXHAUSTED,
        "exhausted",
    )


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, 60 * S),  # 5 s planned, but a throttling receiver gets a minute
        (1, 90.0, 90 * S),
        (1, 3600.0, 120 * S),  # capped at twice the floor
        (1, 1.0, 60 * S),  # never sooner than the floor
        (3, None, 1800 * S),  # past the floor, the schedule rules
        (3, 5000.0, 3600 * S),
    ],
)
def test_throttling_honours_retry_after_within_bounds(attempt, retry_after, expected):
    decision = decide(attempt, Response(429, retry_after), jitter=0)
    assert decision.delay == expected


def test_a_timeout_is_throttling():
    assert decide(1, Response(None, timed_out=True), jitter=0).delay == THROTTLE_MIN_DELAY


@given(
    attempt=st.integers(1, len(DEFAULT_SCHEDULE)),
    sample=st.floats(-1, 1),
    status=st.sampled_from([None, 400, 404, 500, 501]),
)
def test_jitter_stays_within_twenty_percent(attempt, sample, status):
    base = DEFAULT_SCHEDULE[attempt - 1]
    delay = decide(attempt, Response(status), sample=sample).delay
    assert delay is not None
    assert base * 0.8 - S / 1000 <= delay <= base * 1.2 + S / 1000


@given(
    attempt=st.integers(1, len(DEFAULT_SCHEDULE)),
    sample=st.floats(-1, 1),
    retry_after=st.one_of(st.none(), st.floats(0, 10**6)),
    status=st.sampled_from([429, 502, 503, 504]),
)
def test_throttled_delays_are_at_least_a_minute_and_bounded(attempt, sample, retry_after, status):
    delay = decide(attempt, Response(status, retry_after), sample=sample).delay
    floor = max(DEFAULT_SCHEDULE[attempt - 1] * 0.8, THROTTLE_MIN_DELAY)
    assert delay is not None
    assert THROTTLE_MIN_DELAY <= delay <= 2 * max(DEFAULT_SCHEDULE[attempt - 1] * 1.2, floor)


@given(st.integers(1, 50), st.sampled_from([200, 410, 500, 429, None]))
def test_every_path_ends_within_the_attempt_budget(attempt, status):
    decision = decide(attempt, Response(status))
    if attempt > len(DEFAULT_SCHEDULE):
        assert decision.verdict in (Verdict.SUCCEEDED, Verdict.DEAD)
    assert (decision.delay is not None) == (decision.verdict is Verdict.RETRY)
