"""What input the service accepts, wherever it enters: request bodies, query strings, cursors,
NDJSON lines, import records, log streams. Pure rules (no I/O), one place, so every entry
point refuses the same things with the same reasons.

    check_json(value)        JSON nested at most MAX_JSON_DEPTH, integers signed 64-bit,
                             numbers finite, text storable (keys included)
    check_text(text)         text PostgreSQL can store: no NUL, no lone surrogate
    storable(text)           text made storable (NUL → U+FFFD), for what is only recorded
    check_time(dt)           an aware UTC datetime between EARLIEST_TIME and LATEST_TIME
    parse_time(text)         ISO 8601 text → check_time (no offset means UTC)
    time_from_unix(seconds)  unix seconds → check_time

Each raises `LimitError` (a ValueError, so pydantic validators can raise it directly) with
`code` for problem responses and `path` naming where in the value the fault is.

Why these numbers:
- Integers: JSON columns are written by orjson and read by other services' 64-bit parsers;
  orjson refuses integers beyond 64 bits, and a JavaScript reader loses precision beyond 2**53
  but still parses. Signed, so that the range is the same as a BIGINT column.
- Depth 32: orjson refuses to write documents nested 255 deep, and no metadata we have seen
  nests past 5; 32 leaves room without letting one request build deep recursion.
- Times 1970-01-01 .. 9998-12-31 UTC: nothing the service records happened before the unix
  epoch, and a year's margin below datetime's own limit (9999-12-31) means every offset the
  service adds (a day for a date range's end, days of retention, a travel window of hours)
  stays representable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator

MAX_JSON_DEPTH = 32
# A request body or an import record holds metadata one level down.
MAX_BODY_DEPTH = MAX_JSON_DEPTH + 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9998, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
# Exact integer arithmetic: LATEST_TIME.timestamp() is a float that rounds up into 9999.
LATEST_UNIX = (LATEST_TIME - EARLIEST_TIME) // timedelta(seconds=1)
# Dates typed as search terms may be compared as text (inside metadata), where a birthday in
# 1950 is fine, but a range's end may be shifted by a day: only the upper margin applies.
LATEST_DATE = LATEST_TIME.date()

Path = tuple[str | int, ...]


class LimitError(ValueError):
    """Input outside what the service accepts. `path` locates the fault inside the value
    (keys and list indexes); `code` is the problem code a client sees."""

    def __init__(self, reason: str, *, code: str, path: Path = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.path = path

    def __str__(self) -> str:
        where = dotted(self.path)
        return f"{where}: {self.reason}" if where else self.reason

    def within(self, *prefix: str | int) -> LimitError:
        """The same fault, located under `prefix` (e.g. the field that held the value)."""
        return LimitError(self.reason, code=self.code, path=(*prefix, *self.path))


def dotted(path: Sequence[str | int]) -> str:
    return ".".join(printable(part) for part in path)


def printable(part: str | int) -> str:
    """A path part safe to echo in a response: the faulty key itself may hold a NUL or a lone
    surrogate, which would break the very response that reports it."""
    text = str(part)
    if text_fault(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


# --- text ----------------------------------------------------------------------------------


def text_fault(text: str) -> str | None:
    """Why PostgreSQL cannot store `text`, or None. NUL ends a C string and is refused by
    `text` and `jsonb`; a lone surrogate has no UTF-8 encoding at all."""
    if "\x00" in text:
        return "text may not contain NUL (\\u0000) characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "text may not contain unpaired surrogates (\\ud800-\\udfff)"
    return None


def check_text(text: str) -> str:
    if (fault := text_fault(text)) is not None:
        raise LimitError(fault, code="invalid_text")
    return text


def storable(text: str | None) -> str | None:
    """`text` PostgreSQL can store, for what others wrote and we only record (a receiver's
    answer, an error it caused): a NUL becomes U+FFFD, as undecodable bytes already do, and
    a lone surrogate "?"."""
    if text is None or text_fault(text) is None:
        return text
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode()


# --- numbers -------------------------------------------------------------------------------


def check_int(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise LimitError(
            f"integers must lie between {INT64_MIN} and {INT64_MAX} (signed 64-bit)",
            code="number_out_of_range",
        )
    return value


def check_number(value: float) -> float:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return check_int(value)
    if not math.isfinite(value):
        raise LimitError("numbers must be finite", code="number_out_of_range")
    return value


# --- JSON documents ------------------------------------------------------------------------


def check_json(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Walk a parsed JSON value without recursion (so depth cannot exhaust the stack) and
    raise on the first fault found. Returns `value` unchanged."""
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            _check_at(check_text, item, path)
        elif isinstance(item, int | float):
            _check_at(check_number, item, path)
        elif isinstance(item, dict | list):
            if len(path) >= max_depth:
                raise LimitError(
                    f"JSON may be nested at most {max_depth} levels deep",
                    code="too_deep",
                    path=path,
                )
            stack.extend(_children(item, path))
    return value


def _children(item: dict[Any, Any] | list[Any], path: Path) -> list[tuple[Any, Path]]:
    if isinstance(item, list):
        return [(child, (*path, index)) for index, child in enumerate(item)]
    children = []
    for key, child in item.items():
        if isinstance(key, str):
            _check_at(check_text, key, (*path, key))
        children.append((child, (*path, key)))
    return children


def _check_at(check: Any, value: Any, path: Path) -> None:
    try:
        check(value)
    except LimitError as exc:
        raise exc.within(*path) from None


# --- times ---------------------------------------------------------------------------------


def check_time(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (naive means UTC), if it lies in the accepted range."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is in year 0 in UTC
        utc = None
    if utc is None or not EARLIEST_TIME <= utc <= LATEST_TIME:
        raise LimitError(_time_range_reason(), code="time_out_of_range")
    return utc


def parse_time(text: str) -> datetime:
    """ISO 8601 text → a checked UTC datetime; LimitError for anything else."""
    check_text(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise LimitError("not an ISO 8601 date or date-time", code="invalid_time") from None
    return check_time(parsed)


def time_from_unix(seconds: float) -> datetime:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise LimitError("unix time must be a number of seconds", code="invalid_time")
    if not (math.isfinite(seconds) and 0 <= seconds <= LATEST_UNIX):
        raise LimitError(
            f"{_time_range_reason()} (unix seconds 0 to {LATEST_UNIX}, not milliseconds)",
            code="time_out_of_range",
        )
    return check_time(datetime.fromtimestamp(seconds, tz=UTC))


def check_date_bound(day: date) -> date:
    """A date typed as a search bound: any year up to LATEST_DATE (see there)."""
    if day > LATEST_DATE:
        raise LimitError(f"dates must be on or before {LATEST_DATE}", code="time_out_of_range")
    return day


def shift_days(day: date, days: int) -> date:
    """`day` moved by `days`, or LimitError where that leaves the calendar."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        raise LimitError(_time_range_reason(), code="time_out_of_range") from None


def _time_range_reason() -> str:
    return f"times must lie between {EARLIEST_TIME:%Y-%m-%d} and {LATEST_TIME:%Y-%m-%d} (UTC)"


# --- pydantic types ------------------------------------------------------------------------
# A LimitError raised inside a validator becomes an ordinary pydantic error at the field's
# location, so request bodies report it as any other invalid field.

StorableText = Annotated[str, AfterValidator(check_text)]
Int64 = Annotated[int, AfterValidator(check_int)]
Time = Annotated[datetime, AfterValidator(check_time)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
