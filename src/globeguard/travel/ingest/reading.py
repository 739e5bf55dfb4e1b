"""An NDJSON stream into numbered lines, and lines into batches of events.

A stream arrives in chunks of any size. Each chunk is cut at its newlines in one call (a
line-by-line cut re-copied the rest of the chunk for every line: quadratic in the lines per
chunk), and its lines are parsed and checked in one pass, each bad one reported with its
number and reason without stopping the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from globeguard.travel.ingest.events import Login, event_of
from globeguard.travel.ingest.report import IngestReport

# A line longer than this is rejected without being buffered whole.
MAX_LINE_BYTES = 64 * 1024
OVERLONG = "line longer than 64 KiB"

Line = tuple[int, bytes | None]


class LineSplitter:
    """(line number, content) for each non-blank line of a byte stream fed in chunks; content
    is None for a line over MAX_LINE_BYTES, which is dropped without being held in memory
    (detected once the part of it left unfinished at the end of a chunk is too long)."""

    def __init__(self) -> None:
        self._rest = b""
        self._number = 0
        self._overlong = False

    def feed(self, chunk: bytes) -> list[Line]:
        pieces = (self._rest + chunk if self._rest else chunk).split(b"\n")
        self._rest = pieces.pop()
        found: list[Line] = []
        number = self._number
        for piece in pieces:
            number += 1
            if self._overlong:
                self._overlong = False
                found.append((number, None))
            elif piece.strip():
                found.append((number, piece))
        self._number = number
        if len(self._rest) > MAX_LINE_BYTES:
            self._rest, self._overlong = b"", True
        return found

    def end(self) -> list[Line]:
        """The last line, when the stream does not end with a newline."""
        if self._overlong or self._rest.strip():
            return [(self._number + 1, None if self._overlong else self._rest)]
        return []


async def lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[Line]:
    """Every line of a stream, as LineSplitter numbers them."""
    splitter = LineSplitter()
    async for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line
    for line in splitter.end():
        yield line


def parse_line_into(
    events: list[tuple[int, Login]], number: int, raw: bytes | None, report: IngestReport
) -> None:
    """Append the line's event to `events`, or report why the line has none."""
    if raw is None:
        report.reject(number, OVERLONG)
        return
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        report.reject(number, f"not JSON: {exc}")
        return
    try:
        events.append((number, event_of(data)))
    except ValueError as exc:
        report.reject(number, str(exc))


async def event_batches(
    chunks: AsyncIterator[bytes], report: IngestReport, size: int
) -> AsyncIterator[list[tuple[int, Login]]]:
    """The stream's events in batches of `size` (the last one may be smaller). A batch is
    handed over as soon as it is full, before the lines after it are read: the report lists
    each batch's storage errors before the later lines' errors, as lines come."""
    async for batch, refused in event_segments(chunks, size):
        report.absorb(refused)
        if batch:
            yield batch


async def event_segments(
    chunks: AsyncIterator[bytes], size: int
) -> AsyncIterator[tuple[list[tuple[int, Login]], IngestReport]]:
    """`event_batches`, each batch with a report of the lines refused since the previous
    one (the last one may have no events, only refusals): a caller storing a batch while
    the next is read keeps the report in line order by adding each batch's refusals, then
    its storage errors."""
    splitter = LineSplitter()
    batch: list[tuple[int, Login]] = []
    refused = IngestReport()
    async for chunk in chunks:
        for number, raw in splitter.feed(chunk):
            parse_line_into(batch, number, raw, refused)
            if len(batch) >= size:
                yield batch, refused
                batch, refused = [], IngestReport()
    for number, raw in splitter.end():
        parse_line_into(batch, number, raw, refused)
    if batch or refused.error_count:
        yield batch, refused
