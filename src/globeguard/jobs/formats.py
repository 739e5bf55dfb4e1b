"""Telling import files apart by their first bytes, not by their names or content types
(which clients get wrong): gzip by its magic number, then a JSON array by its `[`, NDJSON
by its `{`."""

from __future__ import annotations

from enum import StrEnum

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
JSON_WHITESPACE = b" \t\r\n"


class ImportFormat(StrEnum):
    JSON_ARRAY = "json"
    NDJSON = "ndjson"


class UnknownFormat(ValueError):
    pass


def is_gzip(head: bytes) -> bool:
    return head.startswith(GZIP_MAGIC)


def detect(head: bytes) -> ImportFormat:
    """The format of a file starting with `head` (already decompressed). An empty file or one
    of whitespace only is NDJSON with no lines, which imports nothing."""
    text = head.removeprefix(UTF8_BOM).lstrip(JSON_WHITESPACE)
    if not text or text.startswith(b"{"):
        return ImportFormat.NDJSON
    if text.startswith(b"["):
        return ImportFormat.JSON_ARRAY
    raise UnknownFormat(
        "the file is neither a JSON array of users nor NDJSON (one JSON object per line)"
    )
