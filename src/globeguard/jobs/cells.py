"""CSV cells: metadata flattened into dotted columns, and text escaped so that no cell is
run as a formula by a spreadsheet (OWASP "CSV injection")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson

# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and
# Google Sheets. Tab and carriage return are included because some programs strip them and
# then see the character after.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Nested objects deeper than this are kept whole, as JSON text, in one column.
MAX_FLATTEN_DEPTH = 8


def escape(text: str) -> str:
    """Prefix a formula-looking text with a quote, which spreadsheets show but never run."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(value: Any) -> str:
    """The CSV text of one value. Numbers and booleans come from typed JSON and are never
    formulas, so they are written as they are (a negative number keeps its sign)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()[1:-1]
    if isinstance(value, list | dict):
        return escape(orjson.dumps(value).decode())
    return escape(str(value))


def flatten(doc: Mapping[str, Any], prefix: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf) for every leaf of a JSON object. Lists are leaves: their items have
    no stable names to become columns. An empty object is a leaf too, so it is not lost."""
    for key, value in doc.items():
        path = f"{prefix}.{key}"
        if isinstance(value, dict) and value and depth < MAX_FLATTEN_DEPTH:
            yield from flatten(value, path, depth + 1)
        else:
            yield path, value
