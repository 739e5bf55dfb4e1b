"""The search language's syntax tree, its errors, and its canonical text form (`to_text`)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

MAX_QUERY_LENGTH = 2048
MAX_DEPTH = 32
MAX_TERMS = 64
EXISTS_FIELD = "_exists_"
KEYWORDS = frozenset({"AND", "OR", "NOT"})

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?"
)


class QueryError(ValueError):
    """A query the service cannot run; `position` is the 0-based offset of the offending text."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (at position {self.position})"


class QuerySyntaxError(QueryError):
    """The text is not a well-formed query."""


# --- AST -----------------------------------------------------------------------------------
# `position` (offset of the term's field) is excluded from equality so that a re-parsed
# rendering compares equal to the original tree.


def _position() -> int:
    return dataclasses.field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True)
class Match:
    """`field:value`. `quoted` matters: unquoted 42 or true may also match a JSON number/bool."""

    field: str
    value: str
    quoted: bool = False
    position: int = _position()


@dataclass(frozen=True)
class Prefix:
    """`field:value*`: values starting with `prefix`."""

    field: str
    prefix: str
    position: int = _position()


@dataclass(frozen=True)
class Range:
    """`field:[low TO high]`; a `None` end is open (`*`). Ends are number or ISO 8601 text."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True
    position: int = _position()

    @property
    def kind(self) -> Literal["number", "datetime"]:
        end = self.low if self.low is not None else self.high
        return "number" if scalar_kind(end or "") == "number" else "datetime"


@dataclass(frozen=True)
class Exists:
    """`_exists_:field`: the field is present and not null."""

    field: str
    position: int = _position()


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Term = Match | Prefix | Range | Exists
Node = Term | Not | And | Or


def top_fields(node: Node | None) -> set[str]:
    """The top-level fields a query names (`user_metadata` for `user_metadata.plan:x`): a
    query about `status` is asking about deleted users too."""
    if node is None:
        return set()
    if isinstance(node, Not):
        return top_fields(node.operand)
    if isinstance(node, And | Or):
        return set().union(*(top_fields(op) for op in node.operands))
    return {node.field.split(".", 1)[0]}


def scalar_kind(text: str) -> Literal["number", "date", "datetime"] | None:
    """Classify a bare value: a number, a calendar date, a date with a time, or neither."""
    if _NUMBER_RE.fullmatch(text):
        return "number"
    if _DATE_RE.fullmatch(text) and _valid_datetime(text):
        return "date"
    if _DATETIME_RE.fullmatch(text) and _valid_datetime(text):
        return "datetime"
    return None


def _valid_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:  # the shape matched but e.g. month 13 or Feb 30
        return False
    return True


# --- Lexer ---------------------------------------------------------------------------------
# Terms are lexed whole (field, colon, value or range), so the parser only sees operators,
# parentheses and finished leaves.

_BINDING = {Or: 1, And: 2, Not: 3}  # terms bind tightest (4)


def to_text(node: Node | None) -> str:
    """Canonical query text for a tree: `parse(to_text(node)) == node` for canonical trees
    (AND/OR with two or more operands, none directly nested in its own kind)."""
    if node is None:
        return ""
    if isinstance(node, Or):
        return " OR ".join(_operand_text(operand, 1) for operand in node.operands)
    if isinstance(node, And):
        return " AND ".join(_operand_text(operand, 2) for operand in node.operands)
    if isinstance(node, Not):
        return "NOT " + _operand_text(node.operand, 2)
    return _term_text(node)


def _operand_text(node: Node, parent_binding: int) -> str:
    text = to_text(node)
    return f"({text})" if _BINDING.get(type(node), 4) <= parent_binding else text


def _term_text(term: Term) -> str:
    if isinstance(term, Exists):
        return f"{EXISTS_FIELD}:{term.field}"
    if isinstance(term, Match):
        value = _quote(term.value) if term.quoted else term.value
        return f"{term.field}:{value}"
    if isinstance(term, Prefix):
        prefix = term.prefix if is_plain_value(term.prefix) else _quote(term.prefix)
        return f"{term.field}:{prefix}*"
    opening = "[" if term.include_low else "{"
    closing = "]" if term.include_high else "}"
    return f"{term.field}:{opening}{term.low or '*'} TO {term.high or '*'}{closing}"


def is_plain_value(value: str) -> bool:
    """Whether `value` reads back as itself without quotes (and is not a prefix or a range)."""
    return (
        bool(value)
        and value[0] not in "[{"
        and not any(char.isspace() or char in '()"\\*' for char in value)
    )


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
