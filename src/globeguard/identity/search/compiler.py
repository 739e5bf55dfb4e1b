"""Compile a parsed search query into a WHERE clause over `User`.

SQLite (JSON1) and PostgreSQL (JSONB) must return the same rows for the same query, so each
JSON test checks the value's JSON type explicitly: SQLite's json_extract turns `true` into 1 and
compares text and numbers by storage class, which would otherwise blur "42", 42 and true.
Those per-dialect JSON tests are in metadata_json; this module decides which to make.

Everything the user typed reaches the database as a bound parameter, metadata key paths
included; key names are also restricted to a safe alphabet before they are used at all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import Numeric, String, and_, exists, false, func, literal, or_, true
from sqlalchemy import select as sql_select
from sqlalchemy.sql.elements import ColumnElement

from globeguard.identity.models import Role, User, UserRole
from globeguard.identity.search.metadata_json import PostgresJson, SqliteJson
from globeguard.identity.search.nodes import (
    And,
    Exists,
    Match,
    Node,
    Not,
    Or,
    Prefix,
    QueryError,
    Range,
    Term,
    scalar_kind,
)
from globeguard.identity.search.parser import check_number_text
from globeguard.kit.clock import as_utc
from globeguard.kit.limits import LATEST_DATE, LimitError, check_date_bound

SUPPORTED_DIALECTS = ("sqlite", "postgresql")
MAX_METADATA_DEPTH = 8
_METADATA_COLUMNS = {"user_metadata": User.user_metadata, "app_metadata": User.app_metadata}
_KEY_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
# Not a backslash: PostgreSQL and SQLAlchemy disagree on how to quote one in `ESCAPE '...'`.
_LIKE_ESCAPE = "/"

SEARCHABLE_FIELDS = (
    "id", "username", "email", "given_name", "family_name", "status", "email_verified",
    "logins_count", "created_at", "updated_at", "last_login_at", "last_login_ip",
    "user_metadata.<key>", "app_metadata.<key>", "role",
)  # fmt: skip


class QueryFieldError(QueryError):
    """The query names a field that cannot be searched, or gives it a value it cannot hold."""


def compile_user_filter(node: Node | None, dialect: str) -> ColumnElement[bool]:
    """A boolean over `User` (and its roles) for `dialect` ("sqlite" or "postgresql").
    `None`, the parse of a blank query, matches every user."""
    if dialect not in SUPPORTED_DIALECTS:
        raise ValueError(f"unsupported dialect {dialect!r}; expected one of {SUPPORTED_DIALECTS}")
    return true() if node is None else _Compiler(dialect).compile(node)


class _Compiler:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        text_column = partial(self._string, fold_case=False)
        self.columns: dict[str, Callable[[Term], ColumnElement[bool]]] = {
            "id": self._id,
            # Lower-cased copies make these case-insensitive, as sign-in treats them.
            "username": partial(self._string, User.username_key, fold_case=True),
            "email": partial(self._string, User.email_key, fold_case=True),
            "given_name": partial(text_column, User.given_name),
            "family_name": partial(text_column, User.family_name),
            "status": partial(text_column, User.status),
            "last_login_ip": partial(text_column, User.last_login_ip),
            "email_verified": self._email_verified,
            "logins_count": self._logins_count,
            "created_at": partial(self._datetime, User.created_at),
            "updated_at": partial(self._datetime, User.updated_at),
            "last_login_at": partial(self._datetime, User.last_login_at),
            "role": self._role,
        }

    def compile(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, And):
            return and_(*(self.compile(operand) for operand in node.operands))
        if isinstance(node, Or):
            return or_(*(self.compile(operand) for operand in node.operands))
        if isinstance(node, Not):
            # A missing key or NULL column makes a test NULL, and NOT NULL is still NULL, which
            # would drop the row; "is not true" keeps users that lack the field.
            return self.compile(node.operand).is_not(true())
        return self._term(node)

    def _term(self, term: Term) -> ColumnElement[bool]:
        root, dot, _ = term.field.partition(".")
        if root in _METADATA_COLUMNS:
            return self._metadata(term, _METADATA_COLUMNS[root], _metadata_keys(term))
        handler = self.columns.get(term.field) if not dot else None
        if handler is None:
            raise QueryFieldError(
                f"unknown field {term.field!r}; searchable fields: {', '.join(SEARCHABLE_FIELDS)}",
                term.position,
            )
        return handler(term)

    # --- columns ---------------------------------------------------------------------------

    def _id(self, term: Term) -> ColumnElement[bool]:
        if isinstance(term, Exists):
            return true()
        if isinstance(term, Match):
            try:
                return User.id == uuid.UUID(term.value)
            except ValueError:
                raise _bad_value(term, "a UUID") from None
        raise _unsupported(term)

    def _string(self, column: Any, term: Term, *, fold_case: bool) -> ColumnElement[bool]:
        if isinstance(term, Exists):
            return column.is_not(None)
        if isinstance(term, Match):
            return column == (term.value.lower() if fold_case else term.value)
        if isinstance(term, Prefix):
            prefix = term.prefix.lower() if fold_case else term.prefix
            return self._starts_with(column, prefix, case_sensitive=not fold_case)
        raise _unsupported(term)

    def _email_verified(self, term: Term) -> ColumnElement[bool]:
        if isinstance(term, Exists):
            return true()
        if isinstance(term, Match) and term.value.lower() in ("true", "false"):
            return User.email_verified.is_(true() if term.value.lower() == "true" else false())
        if isinstance(term, Match):
            raise _bad_value(term, "true or false")
        raise _unsupported(term)

    def _logins_count(self, term: Term) -> ColumnElement[bool]:
        column = User.logins_count
        if isinstance(term, Exists):
            return column.is_not(None)
        if isinstance(term, Match) and term.value.lstrip("-").isdecimal():
            return column == _int64(term)
        if isinstance(term, Match):
            raise _bad_value(term, "a whole number")
        if isinstance(term, Range) and term.kind == "number":
            return self._range(column, term, self._number)
        raise _unsupported(term)

    def _datetime(self, column: Any, term: Term) -> ColumnElement[bool]:
        if isinstance(term, Exists):
            return column.is_not(None)
        if isinstance(term, Match):
            kind = scalar_kind(term.value)
            if kind is None:
                raise _bad_value(term, "an ISO 8601 date or date-time")
            try:  # before a day is added to it
                check_date_bound(date.fromisoformat(term.value[:10]))
            except LimitError:
                raise _outside(term, term.value) from None
            start = _utc_datetime(term, term.value)
            if kind == "datetime":
                return column == start
            # A bare date means that whole UTC day.
            day = Range(term.field, term.value, term.value, position=term.position)
            return self._range(column, day, partial(_utc_datetime, term))
        if isinstance(term, Range) and term.kind == "datetime":
            return self._range(column, term, partial(_utc_datetime, term))
        raise _unsupported(term)

    def _role(self, term: Term) -> ColumnElement[bool]:
        name = func.lower(Role.name)
        if isinstance(term, Exists):
            condition: ColumnElement[bool] = true()
        elif isinstance(term, Match):
            condition = name == func.lower(literal(term.value, String))
        elif isinstance(term, Prefix):
            pattern = func.lower(literal(_like_prefix(term.prefix), String))
            condition = name.like(pattern, escape=_LIKE_ESCAPE)
        else:
            raise _unsupported(term)
        held = (
            sql_select(UserRole.user_id)
            .join(Role, Role.id == UserRole.role_id)
            .where(UserRole.user_id == User.id, condition)
        )
        return exists(held)

    # --- metadata --------------------------------------------------------------------------

    def _metadata(self, term: Term, column: Any, keys: list[str]) -> ColumnElement[bool]:
        doc = SqliteJson(column, keys) if self.dialect == "sqlite" else PostgresJson(column, keys)
        if isinstance(term, Exists):
            return doc.present()
        if isinstance(term, Match):
            return or_(*(doc.equals(value) for value in _json_candidates(term)))
        if isinstance(term, Prefix):
            return and_(doc.is_string(), self._starts_with(doc.text(), term.prefix))
        if term.kind == "number":
            return self._range(doc.number(), term, self._number)
        # ISO 8601 text sorts chronologically as long as it is compared byte by byte.
        return self._range(doc.text(), term, lambda text: literal(text, String))

    # --- shared pieces ---------------------------------------------------------------------

    def _starts_with(
        self, expr: Any, prefix: str, *, case_sensitive: bool = True
    ) -> ColumnElement[bool]:
        if self.dialect == "sqlite" and case_sensitive:
            # SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive counterpart.
            return expr.op("GLOB", is_comparison=True)(literal(_glob_prefix(prefix), String))
        return expr.like(literal(_like_prefix(prefix), String), escape=_LIKE_ESCAPE)

    def _number(self, text: str) -> Any:
        if self.dialect == "postgresql":
            return literal(Decimal(text), Numeric())
        return literal(_json_number(text))

    def _range(self, expr: Any, term: Range, convert: Callable[[str], Any]) -> ColumnElement[bool]:
        clauses = []
        for text, inclusive, upper in _aligned_bounds(term):
            value = convert(text)
            if upper:
                clauses.append(expr <= value if inclusive else expr < value)
            else:
                clauses.append(expr >= value if inclusive else expr > value)
        return and_(*clauses)


def _metadata_keys(term: Term) -> list[str]:
    root, _, path = term.field.partition(".")
    if not path:
        raise QueryFieldError(f"{root} needs a key, e.g. {root}.plan", term.position)
    keys = path.split(".")
    if len(keys) > MAX_METADATA_DEPTH:
        raise QueryFieldError(
            f"{root} keys may be nested at most {MAX_METADATA_DEPTH} deep", term.position
        )
    for key in keys:
        if not _KEY_RE.fullmatch(key):
            raise QueryFieldError(
                f"invalid key {key!r} in {term.field!r}: use 1-64 letters, digits, '_' or '-'",
                term.position,
            )
    return keys


def _json_candidates(term: Match) -> list[str | float | bool]:
    """The JSON values an equality test accepts. Typing `age:42` cannot say whether the
    document holds 42 or "42", so unquoted numbers and booleans accept both forms."""
    candidates: list[str | float | bool] = [term.value]
    if not term.quoted and scalar_kind(term.value) == "number" and _storable_number(term.value):
        candidates.append(_json_number(term.value))
    if not term.quoted and term.value in ("true", "false"):
        candidates.append(term.value == "true")
    return candidates


def _json_number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _storable_number(text: str) -> bool:
    """Whether a document could hold `text` as a number: no stored number lies outside the
    signed 64-bit range (kit.limits), so a longer digit string can only be text."""
    try:
        check_number_text(text)
    except LimitError:
        return False
    return True


def _aligned_bounds(term: Range) -> list[tuple[str, bool, bool]]:
    """(bound text, inclusive, is upper) per closed end. A bare date covers its whole day, so
    `[* TO 2024-01-31]` includes all of the 31st and `{2024-01-31 TO *]` starts on Feb 1."""
    bounds = []
    for text, inclusive, upper in (
        (term.low, term.include_low, False),
        (term.high, term.include_high, True),
    ):
        if text is None:
            continue
        if term.kind == "datetime" and scalar_kind(text) == "date":
            day = date.fromisoformat(text)
            if inclusive == upper:  # round outward to the next midnight
                day += timedelta(days=1)
            text, inclusive = day.isoformat(), not upper
        bounds.append((text, inclusive, upper))
    return bounds


def _utc_datetime(term: Term, text: str) -> datetime:
    # A date-time without an offset is taken as UTC, like every time the service stores.
    # Dates are at most 9998-12-31 (the parser checks bounds, _datetime single values), so
    # a day's shift or an offset stays inside datetime's calendar; at the low end
    # 0001-01-01T00:00+05:00 falls out of it.
    try:
        return as_utc(datetime.fromisoformat(text))
    except OverflowError:
        raise _outside(term, text) from None


def _outside(term: Term, text: str) -> QueryFieldError:
    return QueryFieldError(
        f"{term.field}: {text!r} is outside the times the service can compare "
        f"(0001-01-01 to {LATEST_DATE} in UTC)",
        term.position,
    )


def _int64(term: Match) -> int:
    try:
        check_number_text(term.value)
    except LimitError as exc:
        raise QueryFieldError(f"{term.field}: {exc}", term.position) from None
    return int(term.value)


def _like_prefix(prefix: str) -> str:
    escaped = re.sub(r"[%_/]", lambda found: _LIKE_ESCAPE + found.group(), prefix)
    return escaped + "%"


def _glob_prefix(prefix: str) -> str:
    # GLOB has no escape character; a one-character class matches a metacharacter literally.
    return re.sub(r"[*?\[]", lambda found: f"[{found.group()}]", prefix) + "*"


def _unsupported(term: Term) -> QueryFieldError:
    what = {Prefix: "prefix (*) search", Range: "ranges", Match: "this value"}[type(term)]
    return QueryFieldError(f"{term.field} does not support {what}", term.position)


def _bad_value(term: Match, expected: str) -> QueryFieldError:
    return QueryFieldError(f"{term.field} needs {expected}, got {term.value!r}", term.position)
