"""The token bucket core, by table and by property, on a clock the test moves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.kit.bucket import Bucket, Decision, TokenBuckets, refill, take

RATE, BURST = 100.0, 200


@pytest.mark.parametrize(
    ("bucket", "now", "expected_tokens", "allowed", "retry_after_s"),
    [
        (None, 5.0, 199.0, True, 0.0),  # a new key starts full
        (Bucket(0.0, 0.0), 0.0, 0.0, False, 0.01),  # empty: one token is 1/rate away
        (Bucket(0.0, 0.0), 0.005, 0.5, False, 0.005),  # half a token back
        (Bucket(0.0, 0.0), 0.01, 0.0, True, 0.0),  # exactly one token back
        (Bucket(0.5, 10.0), 9.0, 0.5, False, 0.005),  # a clock stepping back refills nothing
        (Bucket(150.0, 0.0), 100.0, 199.0, True, 0.0),  # refill stops at the burst
        (Bucket(1.0, 0.0), 0.0, 0.0, True, 0.0),
    ],
)
def test_take(bucket, now, expected_tokens, allowed, retry_after_s):
    after, decision = take(bucket, now, RATE, BURST)
    assert after.tokens == pytest.approx(expected_tokens)
    assert decision.allowed is allowed
    assert decision.retry_after_s == pytest.approx(retry_after_s)


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.0, 1), (0.001, 1), (1.0, 1), (1.01, 2), (59.5, 60)]
)
def test_retry_after_is_whole_seconds_and_never_zero(seconds, header):
    assert Decision(False, seconds).retry_after_header == header


def test_a_burst_then_the_rate():
    now = 0.0
    buckets = TokenBuckets(RATE, BURST, max_keys=10, clock=lambda: now)
    assert all(buckets.take("k").allowed for _ in range(BURST))
    refused = buckets.take("k")
    assert not refused.allowed and refused.retry_after_s == pytest.approx(1 / RATE)
    now = 1.0  # one second refills `RATE` tokens
    assert sum(buckets.take("k").allowed for _ in range(BURST)) == RATE


def test_keys_have_their_own_buckets():
    buckets = TokenBuckets(1.0, 1, max_keys=10, clock=lambda: 0.0)
    assert buckets.take("a").allowed
    assert not buckets.take("a").allowed
    assert buckets.take("b").allowed


def test_idle_buckets_are_forgotten_before_busy_ones():
    now = 0.0
    buckets = TokenBuckets(1.0, 2, max_keys=2, clock=lambda: now)
    buckets.take("busy")
    buckets.take("busy")  # empty
    buckets.take("idle")  # used after "busy", so plain LRU would forget "busy" first
    now = 1.0  # "idle" is full again; "busy" holds one token
    buckets.take("new")  # table full: the full "idle" goes, "busy" keeps its state
    assert len(buckets) == 2
    assert buckets.take("busy").allowed
    assert not buckets.take("busy").allowed  # a forgotten bucket would have started full


def test_memory_is_bounded_when_every_key_is_busy():
    buckets = TokenBuckets(1.0, 1, max_keys=50, clock=lambda: 0.0)
    for i in range(1000):
        buckets.take(f"k{i}")
    assert len(buckets) <= 50


times = st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=60)
rates = st.floats(min_value=0.01, max_value=1e4)
bursts = st.integers(min_value=1, max_value=1000)


@given(times=times, rate=rates, burst=bursts)
def test_tokens_stay_within_zero_and_burst(times, rate, burst):
    bucket = None
    for now in sorted(times):
        bucket, _ = take(bucket, now, rate, burst)
        assert 0.0 <= bucket.tokens <= burst


@given(times=times, rate=rates, burst=bursts)
def test_never_more_than_burst_plus_rate_times_elapsed(times, rate, burst):
    ordered = sorted(times)
    bucket, allowed = None, 0
    for now in ordered:
        bucket, decision = take(bucket, now, rate, burst)
        allowed += decision.allowed
    elapsed = ordered[-1] - ordered[0]
    assert allowed <= burst + rate * elapsed + 1e-6


@given(start=st.floats(min_value=0, max_value=1e6), rate=rates, burst=bursts)
def test_a_refusal_is_lifted_after_retry_after(start, rate, burst):
    bucket = Bucket(0.0, start)
    bucket, decision = take(bucket, start, rate, burst)
    assert not decision.allowed
    _, later = take(bucket, start + decision.retry_after_s * (1 + 1e-9) + 1e-9, rate, burst)
    assert later.allowed


@given(tokens=st.floats(min_value=0, max_value=1000), at=st.floats(0, 1e6), rate=rates)
def test_refill_never_moves_time_back(tokens, at, rate):
    bucket = Bucket(min(tokens, 1000.0), at)
    assert refill(bucket, at - 1.0, rate, 1000).at == at
