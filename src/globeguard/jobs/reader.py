"""Reading an import file as a stream of records, whatever its size: gzip or not, a JSON
array (parsed incrementally by ijson's C backend, never loaded whole) or NDJSON.

Synchronous on purpose: the job calls `next_batch` in a worker thread, so parsing never runs
on the event loop.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson
import orjson

from globeguard.jobs.formats import UTF8_BOM, ImportFormat, detect, is_gzip

# A line longer than this is refused without being held whole: two metadata objects at
# their 16 KiB limit plus the other fields fit many times over.
MAX_LINE_BYTES = 1024 * 1024
HEAD_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Item:
    """One record, or why its text is not one. `position` is the 1-based line of an NDJSON
    file or the 0-based index in a JSON array."""

    position: int
    record: Any = None
    error: str | None = None


class RecordReader:
    def __init__(self, path: Path) -> None:
        with open(path, "rb") as raw:
            compressed = is_gzip(raw.read(2))
        # Both are buffered readers, so `peek` looks at the head without consuming it.
        self._file: Any = gzip.open(path, "rb") if compressed else open(path, "rb")  # noqa: SIM115
        self.format = detect(self._file.peek(HEAD_BYTES)[:HEAD_BYTES])
        self.position_name = "line" if self.format is ImportFormat.NDJSON else "index"
        self._items: Iterator[Item] = (
            self._ndjson() if self.format is ImportFormat.NDJSON else self._array()
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
            try:
                yield Item(number, orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                yield Item(number, error=f"not JSON: {exc}")

    def _skip_rest_of_line(self) -> None:
        while chunk := self._file.readline(MAX_LINE_BYTES):
            if chunk.endswith(b"\n"):
                return

    def _array(self) -> Iterator[Item]:
        index = 0
        try:
            for record in ijson.items(self._file, "item", use_float=True):
                yield Item(index, record)
                index += 1
        except ijson.JSONError as exc:
            # The rest of a broken array cannot be found again: report where it broke.
            yield Item(index, error=f"not JSON from here on: {exc}")
