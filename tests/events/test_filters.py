"""Event-type patterns: a table of matches, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.events.filters import InvalidPattern, matches, matches_any, validate


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("user.created", "user.created", True),
        ("user.created", "user.deleted", False),
        ("user.*", "user.created", True),
        ("user.*", "user.signin.failed", False),
        ("user.*", "user", False),
        ("user.**", "user.signin.failed", True),
        ("user.**", "user.created", True),
        ("user.**", "user", False),
        ("user.**", "api_key.created", False),
        ("**", "signing_key.rotated", True),
        ("*", "user.created", False),
        ("*.created", "client.created", True),
        ("user.signin.*", "user.signin.suspicious", True),
        ("user.signin.*", "user.signin", False),
    ],
)
def test_matching(pattern, event_type, expected):
    assert matches(validate(pattern), event_type) is expected


@pytest.mark.parametrize(
    "pattern", ["", "user.", ".user", "user.**.x", "User.created", "a b", "user.*x"]
)
def test_invalid_patterns(pattern):
    with pytest.raises(InvalidPattern):
        validate(pattern)


segment = st.from_regex(r"[a-z_]{1,8}", fullmatch=True)
types = st.lists(segment, min_size=1, max_size=4).map(".".join)


@given(types)
def test_a_type_matches_itself_and_everything_matches_double_star(event_type):
    assert matches(event_type, event_type)
    assert matches("**", event_type)


@given(types, types)
def test_a_literal_pattern_matches_only_its_own_type(pattern, event_type):
    assert matches(pattern, event_type) == (pattern == event_type)


@given(types)
def test_star_replaces_any_one_segment(event_type):
    parts = event_type.split(".")
    for i in range(len(parts)):
        assert matches(".".join([*parts[:i], "*", *parts[i + 1 :]]), event_type)
    assert matches_any([], event_type) is False
