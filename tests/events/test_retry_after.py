"""A receiver's Retry-After, whatever it says, becomes a finite wait within bounds: a table of
hostile and ordinary values, and properties over any text and any number."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.events.delivery.schedule import (
    DEFAULT_SCHEDULE,
    THROTTLE_MIN_DELAY,
    Response,
    Verdict,
    decide,
    throttled_delay,
)
from globeguard.kit.retry_after import RETRY_AFTER_MAX_S, parse_retry_after, seconds_until

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)
DAY = RETRY_AFTER_MAX_S


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("000007", 7.0),
        ("86400", DAY),
        ("86401", DAY),
        ("9" * 400, DAY),  # float("9" * 400) is inf
        ("1" + "0" * 5000, DAY),
        ("-3", None),
        ("+3", None),
        ("1.5", None),
        ("inf", None),
        ("Infinity", None),
        ("-inf", None),
        ("nan", None),
        ("1e309", None),
        ("soon", None),
        ("٣", None),  # a digit, but not an ASCII one
        ("", None),
        (None, None),
        ("Sat, 01 Jun 2030 12:02:00 GMT", 120.0),
        ("Saturday, 01-Jun-30 12:02:00 GMT", 120.0),  # the obsolete RFC 850 form
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # past: now
        ("Mon, 01 Jan 0001 00:00:00 GMT", 0.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", DAY),  # far future: a day at most
        ("Sat, 01 Jun 2030 12:02:00 +9999", None),  # an offset no date can take
        ("Sat, 32 Jun 2030 12:02:00 GMT", None),
        ("Sat, 01 Jun 99999999999 12:02:00 GMT", None),
        ("x" * 10_000, None),
    ],
)
def test_retry_after_table(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


@given(st.text(max_size=200))
def test_any_text_is_a_bounded_number_or_nothing(header):
    seconds = parse_retry_after(header, NOW)
    assert seconds is None or 0.0 <= seconds <= DAY


@given(st.integers(min_value=0, max_value=10**400))
def test_any_count_of_seconds_is_clamped(number):
    assert parse_retry_after(str(number), NOW) == min(number, DAY)


@given(st.datetimes(timezones=st.just(UTC)))
def test_any_http_date_is_clamped(when):
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = parse_retry_after(header, NOW)
    if when.year < 1000:  # %Y writes no leading zeros there; not a date a server sends
        return
    expected = min(max(0.0, (when.replace(microsecond=0) - NOW).total_seconds()), DAY)
    assert seconds == expected


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e300, -1e300, 10.0**20])
def test_a_throttled_delay_survives_any_float(value):
    """What the sink hands over is already clamped; the decision does not rely on it."""
    base = timedelta(seconds=5)
    delay = throttled_delay(base, value)
    assert THROTTLE_MIN_DELAY <= delay <= 2 * THROTTLE_MIN_DELAY


@given(
    attempt=st.integers(1, len(DEFAULT_SCHEDULE)),
    retry_after=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    sample=st.floats(-1, 1),
)
def test_a_throttled_answer_always_gets_a_finite_bounded_retry(attempt, retry_after, sample):
    decision = decide(attempt, Response(429, retry_after), sample=sample)
    floor = max(DEFAULT_SCHEDULE[attempt - 1] * 0.8, THROTTLE_MIN_DELAY)
    assert decision.verdict is Verdict.RETRY and decision.delay is not None
    assert (
        THROTTLE_MIN_DELAY <= decision.delay <= 2 * max(DEFAULT_SCHEDULE[attempt - 1] * 1.2, floor)
    )


@pytest.mark.parametrize(
    ("reset", "seconds"),
    [
        ("1000", 0.0),  # already past
        ("1030", 30.0),
        ("9" * 400, DAY),  # int - float overflowed before
        ("-5", None),
        ("1e9", None),
        (None, None),
    ],
)
def test_a_rate_limit_reset_becomes_a_bounded_wait(reset, seconds):
    assert seconds_until(reset, 1000.0) == seconds
