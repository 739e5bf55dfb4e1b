"""kit.limits: the one set of input rules, by table at the edges and by property."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.kit.limits import (
    EARLIEST_TIME,
    INT64_MAX,
    INT64_MIN,
    LATEST_TIME,
    LATEST_UNIX,
    MAX_JSON_DEPTH,
    LimitError,
    check_json,
    check_text,
    check_time,
    parse_time,
    printable,
    storable,
    time_from_unix,
)


def _nested(depth: int, *, array: bool = False) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value] if array else {"k": value}
    return value


@pytest.mark.parametrize(
    ("value", "code", "path"),
    [
        ({"n": INT64_MAX + 1}, "number_out_of_range", ("n",)),
        ({"n": INT64_MIN - 1}, "number_out_of_range", ("n",)),
        ([1, [2, 10**40]], "number_out_of_range", (1, 1)),
        ({"x": math.inf}, "number_out_of_range", ("x",)),
        ({"x": -math.inf}, "number_out_of_range", ("x",)),
        ({"x": math.nan}, "number_out_of_range", ("x",)),
        ({"a": "b\x00"}, "invalid_text", ("a",)),
        ({"a\x00": 1}, "invalid_text", ("a\x00",)),
        ({"a": ["ok", "\ud800"]}, "invalid_text", ("a", 1)),
        ({"\udfff": 1}, "invalid_text", ("\udfff",)),
        (_nested(MAX_JSON_DEPTH + 1), "too_deep", ("k",) * MAX_JSON_DEPTH),
        (_nested(MAX_JSON_DEPTH + 1, array=True), "too_deep", (0,) * MAX_JSON_DEPTH),
        (_nested(100_000, array=True), "too_deep", (0,) * MAX_JSON_DEPTH),
    ],
)
def test_json_outside_the_limits(value, code, path):
    with pytest.raises(LimitError) as error:
        check_json(value)
    assert error.value.code == code and error.value.path == path


@pytest.mark.parametrize(
    "value",
    [
        {"n": INT64_MAX, "m": INT64_MIN, "b": True, "f": 1.7976931348623157e308, "z": None},
        _nested(MAX_JSON_DEPTH),
        _nested(MAX_JSON_DEPTH, array=True),
        {"emoji": "🌍", "pair": "\U0001f600", "tab": "\t"},
        [],
        "",
    ],
)
def test_json_at_the_limits(value):
    assert check_json(value) is value
    orjson.dumps(value)  # what the JSON columns do with it


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("0001-01-01T00:00:00+05:00", "time_out_of_range"),  # year 0 in UTC
        ("0001-01-01T00:00:00Z", "time_out_of_range"),
        ("1969-12-31T23:59:59.999999Z", "time_out_of_range"),
        ("9999-01-01T00:00:00Z", "time_out_of_range"),
        ("9998-12-31T23:00:00-05:00", "time_out_of_range"),
        ("9999-12-31T23:59:59-05:00", "time_out_of_range"),
        ("0000-01-01", "invalid_time"),
        ("-0001-01-01", "invalid_time"),
        ("+10000-01-01", "invalid_time"),
        ("2024-01-01T00:00:00\x00", "invalid_text"),
        ("yesterday", "invalid_time"),
    ],
)
def test_times_outside_the_range(text, code):
    with pytest.raises(LimitError) as error:
        parse_time(text)
    assert error.value.code == code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00Z", EARLIEST_TIME),
        ("1970-01-01T05:00:00+05:00", EARLIEST_TIME),
        ("9998-12-31T23:59:59.999999+00:00", LATEST_TIME),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),  # naive means UTC
    ],
)
def test_times_at_the_edges(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("seconds", [-1, -0.5, 253_402_300_799, 2**64, math.inf, math.nan, True])
def test_unix_times_outside_the_range(seconds):
    with pytest.raises(LimitError):
        time_from_unix(seconds)


def test_unix_times_at_the_edges():
    assert time_from_unix(0) == EARLIEST_TIME
    assert time_from_unix(LATEST_UNIX) == LATEST_TIME.replace(microsecond=0)


@given(st.datetimes(timezones=st.just(UTC) | st.none()), st.integers(-23 * 60, 23 * 60))
def test_check_time_never_overflows_and_agrees_with_the_range(moment, offset_minutes):
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    try:
        utc = check_time(aware)
    except LimitError:
        return
    assert EARLIEST_TIME <= utc <= LATEST_TIME and utc == aware
    # The margin: a day either way stays representable.
    assert utc + timedelta(days=366) > utc - timedelta(days=366)


@given(st.text())
def test_check_text_accepts_exactly_what_utf8_without_nul_can_carry(text):
    storable = "\x00" not in text and all(not 0xD800 <= ord(c) <= 0xDFFF for c in text)
    try:
        check_text(text)
    except LimitError:
        assert not storable
    else:
        assert storable
        text.encode("utf-8")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))  # fmt: skip
def test_what_check_json_accepts_orjson_writes(value):
    try:
        check_json(value)
    except LimitError as exc:
        fault = exc
    else:
        orjson.dumps(value)
        return
    # The reason names the path, and can be echoed in a response whatever the key held.
    str(fault).encode("utf-8")
    assert all(isinstance(printable(part), str) for part in fault.path)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        (None, None),
        ("plain answer", "plain answer"),
        ("ok\x00\x00then", "ok\ufffd\ufffdthen"),
        ("a\ud800b", "a?b"),
        ("ünï 🌍", "ünï 🌍"),
    ],
)
def test_recorded_text_is_made_storable_and_left_alone_when_it_is(
    text: str | None, stored: str | None
) -> None:
    assert storable(text) == stored


@given(st.text())
def test_storable_text_passes_check_text(text: str) -> None:
    result = storable(text)
    assert result is not None and check_text(result) == result
