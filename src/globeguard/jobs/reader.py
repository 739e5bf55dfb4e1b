"""Reading an import file as a stream of records, whatever its size: gzip or not, a JSON
array or NDJSON. A JSON array is cut into its elements here (never loaded whole), so both
formats parse each record alone, with the same rules, and one bad record fails only itself.

Synchronous on purpose: the job calls `next_batch` in a worker thread, so parsing never runs
on the event loop.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from globeguard.jobs.formats import JSON_WHITESPACE, UTF8_BOM, ImportFormat, detect, is_gzip
from globeguard.kit.limits import INT64_MAX, INT64_MIN

# A line or array element longer than this is refused without being held whole: two
# metadata objects at their 16 KiB limit plus the other fields fit many times over.
MAX_LINE_BYTES = 1024 * 1024
HEAD_BYTES = 4096
CHUNK_BYTES = 64 * 1024

# orjson reads an integer beyond 64 bits as a float, silently changing it (2**64 and up, or
# below -2**63). Such an integer has at least 19 digits, so only a record holding a run of 19
# digits in number position is read again exactly. Mapping the digits with translate and
# finding the run costs ~0.6 µs per 400-byte record (a regex search ~5 µs, more than orjson's
# parse); each run found (Google user ids have 21 digits) then costs a few operations.
_DIGITS_ONLY = bytes(ord("0") if ord("0") <= i <= ord("9") else ord(" ") for i in range(256))
_LONG_DIGIT_RUN = b"0" * 19
# Integers this long are out of range whatever their digits, and int() of thousands of digits
# is slow (and refused past 4300): they stand in as the first value past the range, which
# every record check refuses as number_out_of_range.
_MAX_INT_DIGITS = 20

# From `pos` up to and including the next bracket or brace outside a string (group 1).
# Possessive, so a string cut off at the end of the buffer fails at once, without backtracking.
_TO_NEXT_BRACKET = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+([\[\]{}])', re.DOTALL)
# Where an object in an array of objects most likely ends: before the next object or at the
# end of the array. One search and one parse per element: a slice that parses whole is one
# complete value, so the guess is right exactly when it parses; otherwise (the guess fell
# inside a nested array of objects, or the element is bad) the brackets are counted.
_LIKELY_END = re.compile(rb"\}[ \t\r\n]*(?:,[ \t\r\n]*\{|\][ \t\r\n]*\Z)")
# _TO_NEXT_BRACKET without the bracket: how far the text surely lies outside strings.
_OUTSIDE_STRINGS = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_SCALAR = re.compile(rb"[^,\]\s]++(?=[,\]\s])")


@dataclass(frozen=True, slots=True)
class Item:
    """One record, or why its text is not one. `position` is the 1-based line of an NDJSON
    file or the 0-based index in a JSON array."""

    position: int
    record: Any = None
    error: str | None = None


def _has_long_integer(raw: bytes) -> bool:
    """Whether `raw` may hold an integer of 19 digits or more (a run of that many digits
    after `[`, `:` or `,`, or at the start), not only such a run inside a string."""
    digits = raw.translate(_DIGITS_ONLY)
    found = digits.find(_LONG_DIGIT_RUN)
    while found >= 0:
        # A bounded look back, so that a line of many digit runs costs linear time; all
        # whitespace (or the start) counts as number position, which is merely slower.
        before = raw[max(0, found - 16) : found].rstrip(b"-").rstrip(JSON_WHITESPACE)
        if not before or before[-1:] in (b"[", b":", b","):
            return True
        run_end = digits.find(b" ", found)
        found = digits.find(_LONG_DIGIT_RUN, run_end) if run_end >= 0 else -1
    return False


def parse_record(position: int, raw: bytes) -> Item:
    """One record's JSON text → its value, exactly. orjson first (fast); the standard
    library only where orjson would change a value (long integers) or refused the text, so
    that text orjson refuses for a reason the record checks name (an infinite number, a lone
    surrogate) is reported with that reason (number_out_of_range, invalid_text)."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        exact = _exact(raw)
        return Item(position, error=f"not JSON: {exc}") if exact is None else Item(position, *exact)
    if _has_long_integer(raw):
        exact = _exact(raw)
        if exact is not None:
            return Item(position, *exact)
    return Item(position, record)


def _exact(raw: bytes) -> tuple[Any] | None:
    """`raw` parsed with integers kept whole and lone surrogates kept as they are (the record
    checks refuse both), or None where it is not JSON (NaN and Infinity included)."""
    try:
        return (json.loads(raw, parse_int=_exact_int, parse_constant=_refuse_constant),)
    except (ValueError, RecursionError):
        return None


def _exact_int(text: str) -> int:
    if len(text.removeprefix("-")) > _MAX_INT_DIGITS:
        return INT64_MIN - 1 if text.startswith("-") else INT64_MAX + 1
    return int(text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class RecordReader:
    def __init__(self, path: Path) -> None:
        with open(path, "rb") as raw:
            compressed = is_gzip(raw.read(2))
        # Both are buffered readers, so `peek` looks at the head without consuming it.
        self._file: Any = gzip.open(path, "rb") if compressed else open(path, "rb")  # noqa: SIM115
        self.format = detect(self._file.peek(HEAD_BYTES)[:HEAD_BYTES])
        self.position_name = "line" if self.format is ImportFormat.NDJSON else "index"
        self._items: Iterator[Item] = (
            self._ndjson()
            if self.format is ImportFormat.NDJSON
            else ArrayElements(self._file).items()
        )

    def next_batch(self, size: int) -> list[Item]:
        batch: list[Item] = []
        for item in self._items:
            batch.append(item)
            if len(batch) == size:
                break
        return batch

    def close(self) -> None:
        self._file.close()

    def _ndjson(self) -> Iterator[Item]:
        number = 0
        while True:
            line = self._file.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            number += 1
            if number == 1:
                line = line.removeprefix(UTF8_BOM)
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                self._skip_rest_of_line()
                yield Item(number, error=f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if not line.strip():
                continue
            yield parse_record(number, line)

    def _skip_rest_of_line(self) -> None:
        while chunk := self._file.readline(MAX_LINE_BYTES):
            if chunk.endswith(b"\n"):
                return


class ArrayEnded(Exception):
    """The array cannot be followed further: the rest of the file is reported as one error."""


class ArrayElements:
    """The elements of a JSON array, each cut out as text by matching brackets outside
    strings and parsed alone by `parse_record`: an element that is not valid JSON, or that
    holds a value the record checks refuse, fails only itself. Only text that loses track of
    the brackets (an unterminated string, a missing comma) ends the array."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self._buf = b""
        self._pos = 0
        self._eof = False

    def items(self) -> Iterator[Item]:
        index = 0
        try:
            self._expect_start()
            if self._next_significant() == b"]":
                return
            while True:
                if self._next_significant() in (b"]", b",", b""):
                    raise ArrayEnded(f"expected element {index}")
                yield self._element(index)
                index += 1
                token = self._next_significant()
                self._pos += 1
                if token == b"]":
                    return
                if token != b",":
                    raise ArrayEnded(f"expected ',' or ']' after element {index - 1}")
        except ArrayEnded as exc:
            yield Item(index, error=f"not JSON from here on: {exc}")

    def _expect_start(self) -> None:
        self._read_more()
        self._buf = self._buf.removeprefix(UTF8_BOM)
        if self._next_significant() != b"[":
            raise ArrayEnded("not an array")
        self._pos += 1

    def _element(self, index: int) -> Item:
        if self._pos >= CHUNK_BYTES:  # drop what is consumed, at most once per chunk
            self._buf, self._pos = self._buf[self._pos :], 0
        start = self._pos
        head = self._buf[start : start + 1]
        guess = _LIKELY_END.search(self._buf, start) if head == b"{" else None
        if guess is not None and guess.start() - start < MAX_LINE_BYTES:
            item = parse_record(index, self._buf[start : guess.start() + 1])
            if item.error is None:
                self._pos = guess.start() + 1
                return item
        if head in (b"{", b"["):
            end = self._end_of_nested(start)
            if end is None:
                return Item(index, error=f"element longer than {MAX_LINE_BYTES} bytes")
        else:
            end = self._end_of_flat(start, _STRING if head == b'"' else _SCALAR)
        self._pos = end
        return parse_record(index, self._buf[start:end])

    def _end_of_nested(self, start: int) -> int | None:
        """Where the object or array at `start` ends, or None when it is longer than
        MAX_LINE_BYTES: it is then skipped without being held (the buffer keeps only what
        is unread) and `_pos` is set past it."""
        depth, pos, overlong = 0, start, False
        while True:
            match = _TO_NEXT_BRACKET.match(self._buf, pos)
            if match is None:
                pos = _OUTSIDE_STRINGS.match(self._buf, pos).end()  # type: ignore[union-attr]
                if len(self._buf) - pos > MAX_LINE_BYTES:  # one string longer than that
                    raise ArrayEnded(f"an element longer than {MAX_LINE_BYTES} bytes")
                overlong = overlong or pos - start > MAX_LINE_BYTES
                if overlong:
                    self._buf, pos, start = self._buf[pos:], 0, 0
                if not self._read_more():
                    raise ArrayEnded("the file ends inside an element")
                continue
            pos = match.end()
            depth += 1 if match.group(1) in (b"{", b"[") else -1
            if depth == 0:
                if overlong or pos - start > MAX_LINE_BYTES:
                    self._buf, self._pos = self._buf[pos:], 0
                    return None
                return pos

    def _end_of_flat(self, start: int, pattern: re.Pattern[bytes]) -> int:
        while (match := pattern.match(self._buf, start)) is None:
            if len(self._buf) - start > MAX_LINE_BYTES:
                raise ArrayEnded(f"an element longer than {MAX_LINE_BYTES} bytes")
            if not self._read_more():
                raise ArrayEnded("the file ends inside an element")
        return match.end()

    def _next_significant(self) -> bytes:
        """The next byte that is not whitespace (b"" at the end of the file), not consumed."""
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in JSON_WHITESPACE:
                self._pos += 1
            if self._pos < len(self._buf):
                return self._buf[self._pos : self._pos + 1]
            if not self._read_more():
                return b""

    def _read_more(self) -> bool:
        """Append the next chunk (positions into the buffer stay valid); False at the end."""
        if self._eof:
            return False
        chunk = self._file.read(CHUNK_BYTES)
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True
