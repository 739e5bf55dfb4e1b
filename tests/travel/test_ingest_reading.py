"""Reading an NDJSON stream at bulk speed must not change what it is read as: the hand check of
a line accepts exactly what the schema accepts, as the same values, and refuses the rest with
the schema's words; lines are numbered and cut as before, whatever the chunking; a report
lists errors in the order lines come and batches are stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from globeguard.travel.ingest.events import _validated, event_of, parse_line
from globeguard.travel.ingest.reading import MAX_LINE_BYTES, LineSplitter, event_batches
from globeguard.travel.ingest.report import IngestReport

texts = st.one_of(
    st.sampled_from(["alice", "bob@example.com", "ünï", "  padded ", "a\x00b", "\ud800", "", " "]),
    st.text(max_size=8),
    st.text(min_size=63, max_size=66),
    st.text(min_size=319, max_size=322),
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    st.sampled_from(["2024-03-01T12:00:00Z", "2024-03-01", "1700000000", "yesterday"]),
    st.lists(st.integers(), max_size=2),
)
addresses = st.one_of(
    st.sampled_from(
        [
            "81.2.69.160",
            " 81.2.69.160",
            "081.2.69.160",
            "2001:db8::1",
            "2001:DB8::1",
            "::ffff:81.2.69.160",
            "fe80::1%eth0",
            "999.1.1.1",
            "",
        ]
    ),
    values,
)
times = st.one_of(
    st.integers(-5, 253402300799 + 5),
    st.floats(-1.0, 2e11, allow_nan=False),
    st.just(1_700_000_000),
    st.just(1_700_000_000.25),
    values,
)
NAMES = {
    "subject": texts,
    "username": texts,
    "user": values,
    "occurred_at": times,
    "timestamp": times,
    "unix_timestamp": times,
    "ip": addresses,
    "ip_address": addresses,
    "success": values,
    "event_uuid": texts,
    "id": values,
    "user_agent": values,
    "failure_reason": texts,
    "extra": values,
}
MAIN = ("subject", "occurred_at", "ip")
documents = st.one_of(
    st.fixed_dictionaries(
        {name: NAMES[name] for name in MAIN},
        optional={k: v for k, v in NAMES.items() if k not in MAIN},
    ),
    st.fixed_dictionaries({}, optional=NAMES),
)


def outcome(check: Any, data: dict[str, Any]) -> Any:
    try:
        return tuple(check(data))
    except ValueError as exc:
        return ("refused", str(exc))


@settings(max_examples=600)
@given(documents)
def test_the_hand_check_accepts_and_words_exactly_as_the_schema(data: dict[str, Any]) -> None:
    assert outcome(event_of, data) == outcome(_validated, data)


def test_a_plain_line_is_read_without_the_schema_and_a_padded_one_with_it() -> None:
    plain = parse_line(b'{"subject":"dana","ip":"81.2.69.160","occurred_at":1700000000}')
    padded = parse_line(b'{"subject":" dana ","ip":"81.2.69.160","occurred_at":1700000000}')
    assert plain == padded
    assert plain.subject == "dana" and plain.success is True and plain.event_uuid is None


def reference_lines(chunks: list[bytes]) -> list[tuple[int, bytes | None]]:
    """The line cutting the stream route always had, one line at a time."""
    found: list[tuple[int, bytes | None]] = []
    buffer, number, overlong = b"", 0, False
    for chunk in chunks:
        buffer += chunk
        while (cut := buffer.find(b"\n")) >= 0:
            line, buffer = buffer[:cut], buffer[cut + 1 :]
            number += 1
            if overlong:
                overlong = False
                found.append((number, None))
            elif line.strip():
                found.append((number, line))
        if len(buffer) > MAX_LINE_BYTES:
            buffer, overlong = b"", True
    if overlong or buffer.strip():
        found.append((number + 1, None if overlong else buffer))
    return found


pieces = st.lists(
    st.one_of(
        st.sampled_from([b"\n", b"{}", b"  ", b"\r\n", b'{"a":1}\n', b"\n\n"]),
        st.binary(max_size=20),
        st.integers(MAX_LINE_BYTES - 2, MAX_LINE_BYTES + 2).map(lambda n: b"x" * n),
    ),
    max_size=8,
)


@settings(max_examples=300)
@given(pieces)
def test_lines_are_cut_and_numbered_as_before_whatever_the_chunks(chunks: list[bytes]) -> None:
    splitter = LineSplitter()
    found = [line for chunk in chunks for line in splitter.feed(chunk)] + splitter.end()
    assert found == reference_lines(chunks)


async def _stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def line(n: int, **extra: Any) -> bytes:
    event = {"subject": f"s{n}", "ip": "81.2.69.160", "occurred_at": 1_700_000_000 + n, **extra}
    return orjson.dumps(event)


async def test_a_batch_is_handed_over_before_the_lines_after_it_are_read() -> None:
    # One chunk holding two batches of 2 and a bad line in each.
    body = b"\n".join([line(1), b"{bad", line(2), line(3), b"[]", line(4)]) + b"\n"
    report = IngestReport()
    seen = []
    async for batch in event_batches(_stream([body]), report, 2):
        seen.append(([n for n, _ in batch], [e.line for e in report.errors]))
        # What storing the batch would report, after the errors of the lines read so far.
        report.reject(batch[0][0], "stored badly")
    assert seen == [([1, 3], [2]), ([4, 6], [2, 1, 5])]
    assert [e.line for e in report.errors] == [2, 1, 5, 4]
