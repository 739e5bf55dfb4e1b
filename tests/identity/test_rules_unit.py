"""Pure rules: scope selection, metadata merge, cursors, the revocation cache."""

from __future__ import annotations

import uuid
from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.identity.grants import Grants
from globeguard.identity.revocation import RevocationCache, SubjectState
from globeguard.identity.users.service import decode_cursor, encode_cursor, merge_metadata
from globeguard.kit.errors import BadRequest
from globeguard.kit.limits import EARLIEST_TIME, LATEST_TIME


@pytest.mark.parametrize(
    ("granted", "requested", "expected"),
    [
        ({"profile", "users:read"}, None, ["profile", "users:read"]),
        ({"profile", "users:read"}, "users:read", ["users:read"]),
        ({"profile"}, "users:read profile", ["profile"]),
        ({"profile"}, "nonsense", []),
    ],
)
def test_session_scopes_never_exceed_grants(granted, requested, expected):
    assert Grants([], frozenset(granted)).session_scopes(requested) == expected


@pytest.mark.parametrize(
    ("current", "patch", "merged"),
    [
        ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
        ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),
        ({"a": {"x": 1}}, {"a": {"y": 2}}, {"a": {"y": 2}}),
        ({}, {"gone": None}, {}),
    ],
)
def test_metadata_merge_is_top_level_and_null_deletes(current, patch, merged):
    assert merge_metadata(current, patch) == merged


# Every stored time lies in kit.limits' range; a cursor outside it was never issued.
@given(
    st.datetimes(
        min_value=EARLIEST_TIME.replace(tzinfo=None),
        max_value=LATEST_TIME.replace(tzinfo=None),
        timezones=st.just(UTC),
    ),
    st.uuids(),
)
def test_cursor_round_trips(created, user_id):
    assert decode_cursor(encode_cursor(created, user_id)) == (created, user_id)


@pytest.mark.parametrize("bad", ["", "!!!", "bm90IGEgY3Vyc29y", "MjAyNHx4"])
def test_foreign_cursors_are_a_400(bad):
    with pytest.raises(BadRequest):
        decode_cursor(bad)


def test_revocation_cache_evicts_by_subject_and_session():
    cache = RevocationCache(ttl_s=60)
    state = SubjectState(1, True, False)
    cache.put("u1", "s1", state)
    cache.put("u1", "s2", state)
    cache.put("u2", "s3", state)
    cache.evict("session:s1")
    assert cache.get("u1", "s1") is None and cache.get("u1", "s2") == state
    cache.evict("u1")
    assert cache.get("u1", "s2") is None and cache.get("u2", "s3") == state


def test_revocation_cache_entries_expire():
    cache = RevocationCache(ttl_s=0)
    cache.put("u1", None, SubjectState(1, True, False))
    assert cache.get("u1", None) is None


def test_revocation_cache_is_bounded():
    cache = RevocationCache(ttl_s=60, max_entries=3)
    for i in range(5):
        cache.put(str(uuid.uuid4()), None, SubjectState(i, True, False))
    assert len(cache) == 3
