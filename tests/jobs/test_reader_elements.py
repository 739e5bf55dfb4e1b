"""Cutting a JSON array into elements (jobs.reader.ArrayElements) and parsing each record
exactly (jobs.reader.parse_record): pure, by tables and hypothesis."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from globeguard.jobs import reader
from globeguard.jobs.reader import MAX_LINE_BYTES, RecordReader, parse_record


def _read(tmp_path: Path, content: bytes) -> list[tuple[int, object, str | None]]:
    path = tmp_path / "users.json.gz"
    path.write_bytes(gzip.compress(content))
    records = RecordReader(path)
    try:
        return [(i.position, i.record, i.error) for i in records.next_batch(100)]
    finally:
        records.close()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[]", []),
        (b"\xef\xbb\xbf [ ] ", []),
        # A nested array of objects holds the "},{" that usually ends an element.
        (
            b'[{"ids": [{"a": 1}, {"b": 2}]}, {"c": "},{"}]',
            [(0, {"ids": [{"a": 1}, {"b": 2}]}, None), (1, {"c": "},{"}, None)],
        ),
        (b'[{"s": "]}[{\\"\\\\"}, 3]', [(0, {"s": ']}[{"\\'}, None), (1, 3, None)]),
        (
            b'[[1, [2]], "x", -4, null]',
            [(0, [1, [2]], None), (1, "x", None), (2, -4, None), (3, None, None)],
        ),
        # A bad element in the middle: the ones after it are read.
        (
            b'[{"a": 1}, {broken}, {"b": 2}]',
            [(0, {"a": 1}, None), (1, None, "not JSON"), (2, {"b": 2}, None)],
        ),
        (b'[{"n": NaN}, {"b": 2}]', [(0, None, "not JSON"), (1, {"b": 2}, None)]),
        # Where the brackets are lost, the rest is one error at the element it starts at.
        (b'[{"a": 1},]', [(0, {"a": 1}, None), (1, None, "not JSON from here on")]),
        (b'[{"a": 1} {"b": 2}]', [(0, {"a": 1}, None), (1, None, "not JSON from here on")]),
        (b'[{"a": 1}, {"b": "open}]', [(0, {"a": 1}, None), (1, None, "not JSON from here on")]),
        (b'[{"a": 1}, {"b"', [(0, {"a": 1}, None), (1, None, "not JSON from here on")]),
    ],
)
def test_array_elements(tmp_path, content, expected):
    got = _read(tmp_path, content)
    assert [(p, r) for p, r, _ in got] == [(p, r) for p, r, _ in expected]
    for (_, _, error), (_, _, prefix) in zip(got, expected, strict=True):
        assert (error is None) if prefix is None else error.startswith(prefix)


def test_an_overlong_element_is_refused_without_losing_the_next(tmp_path):
    long = b'{"x": [' + b"1," * MAX_LINE_BYTES + b"1]}"
    got = _read(tmp_path, b"[" + long + b', {"b": 2}]')
    assert got == [(0, None, f"element longer than {MAX_LINE_BYTES} bytes"), (1, {"b": 2}, None)]


@pytest.mark.parametrize(
    ("raw", "record", "error"),
    [
        (b'{"n": 18446744073709551616}', {"n": 2**64}, None),  # orjson alone: a float
        (b'{"n": -9223372036854775809}', {"n": -(2**63) - 1}, None),
        (b"[1, 12345678901234567890]", [1, 12345678901234567890], None),
        (b"[1, 12345678901234567890123]", [1, 2**63], None),  # stands in, out of range too
        (b'{"n": 1' + b"0" * 5000 + b"}", {"n": 2**63}, None),  # past the range, not parsed
        (b'{"n": -1' + b"0" * 5000 + b"}", {"n": -(2**63) - 1}, None),
        (b'{"id": "x|123456789012345678901", "f": 1.5e300}', None, None),  # text, not a number
        (b'{"s": "\\ud800"}', {"s": "\ud800"}, None),  # for the record checks to name
        (b'{"n": Infinity}', None, "not JSON"),
        (b'{"n": 1', None, "not JSON"),
    ],
)
def test_parse_record_keeps_values_exact(raw, record, error):
    item = parse_record(7, raw)
    assert item.position == 7
    if error is not None:
        assert item.record is None and item.error.startswith(error)
    else:
        assert item.error is None
        assert item.record == (orjson.loads(raw) if record is None else record)
        assert repr(item.record) == repr(orjson.loads(raw) if record is None else record)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(st.characters(codec="utf-8")),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(JSON, max_size=8), st.booleans(), st.integers(1, 64))
def test_any_array_reads_back_element_by_element(tmp_path_factory, values, indent, chunk):
    """Whatever the values, the layout and where the chunks of the file are cut."""
    content = orjson.dumps(values, option=orjson.OPT_INDENT_2 if indent else 0)
    path = tmp_path_factory.mktemp("a") / "users.json"
    path.write_bytes(content)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "CHUNK_BYTES", chunk)
        records = RecordReader(path)
        items = records.next_batch(100)
        records.close()
    assert [(i.position, i.error) for i in items] == [(n, None) for n in range(len(values))]
    assert orjson.dumps([i.record for i in items]) == orjson.dumps(values)
