"""The user search language: Lucene-like text (as in Auth0's user search) to a small AST.

    query    := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*          adjacent terms are ANDed
    unary    := ("NOT" | "-") unary | primary
    primary  := term | "(" or_expr ")"
    term     := field ":" (value | value* | "quoted" | "quoted"* | range) | "_exists_:" field
    range    := ("[" | "{") bound "TO" bound ("]" | "}")     bound: number, ISO 8601 date, *

Pure on purpose (no I/O, no database types): the HTTP layer can reject a bad query before it
opens a session, and the compiler is the only place that knows about SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal, NoReturn

from globeguard.identity.search.nodes import (
    EXISTS_FIELD,
    KEYWORDS,
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    And,
    Exists,
    Match,
    Node,
    Not,
    Or,
    Prefix,
    QuerySyntaxError,
    Range,
    Term,
    scalar_kind,
)
from globeguard.kit.limits import (
    INT64_MAX,
    INT64_MIN,
    LimitError,
    check_date_bound,
    text_fault,
)

__all__ = ["check_number_text", "parse"]

# A leading "-" would read as negation, so a field may not start with one.
_FIELD_RE = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]*")


TokenKind = Literal["(", ")", "AND", "OR", "NOT", "TERM", "END"]


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    position: int
    text: str
    term: Term | None = None


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.term_count = 0

    def tokens(self) -> list[_Token]:
        tokens: list[_Token] = []
        while True:
            self._skip_space()
            if self.pos >= len(self.text):
                tokens.append(_Token("END", self.pos, ""))
                return tokens
            tokens.append(self._next_token())

    def _peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def _skip_space(self) -> None:
        while self._peek().isspace():
            self.pos += 1

    def _scan(self, stop: str) -> str:
        """Consume a run of characters up to whitespace, the end, or one of `stop`."""
        start = self.pos
        while (char := self._peek()) and not char.isspace() and char not in stop:
            self.pos += 1
        return self.text[start : self.pos]

    def _at_boundary(self, *, also: str = "") -> bool:
        char = self._peek()
        return not char or char.isspace() or char in "()" or char in also

    def _next_token(self) -> _Token:
        start, char = self.pos, self._peek()
        if char in ("(", ")"):
            self.pos += 1
            return _Token(char, start, char)  # type: ignore[arg-type]
        if char == "-":
            self.pos += 1
            if self._at_boundary() and self._peek() != "(":
                raise QuerySyntaxError("'-' must be directly followed by a term", start)
            return _Token("NOT", start, "-")
        word = self._scan('()":')
        if self._peek() == ":":
            return self._term(word, start)
        if word in KEYWORDS:
            return _Token(word, start, word)  # type: ignore[arg-type]
        found = repr(word) if word else "a quoted value"
        hint = " (operators are uppercase)" if word.upper() in KEYWORDS else ""
        raise QuerySyntaxError(f"expected field:value, found {found}{hint}", start)

    def _term(self, field: str, start: int) -> _Token:
        if not field:
            raise QuerySyntaxError("missing field name before ':'", start)
        if not _FIELD_RE.fullmatch(field):
            raise QuerySyntaxError(f"invalid field name {field!r}", start)
        self.term_count += 1
        if self.term_count > MAX_TERMS:
            raise QuerySyntaxError(f"a query may have at most {MAX_TERMS} terms", start)
        self.pos += 1  # the colon
        term = self._value(field, start)
        if not self._at_boundary():
            raise QuerySyntaxError(f"unexpected {self._peek()!r} after the value", self.pos)
        return _Token("TERM", start, self.text[start : self.pos], term)

    def _value(self, field: str, start: int) -> Term:
        value_pos, char = self.pos, self._peek()
        if self._at_boundary():
            raise QuerySyntaxError(f"missing value after '{field}:'", value_pos)
        if field == EXISTS_FIELD:
            path = self._scan('()"')
            if not _FIELD_RE.fullmatch(path):
                raise QuerySyntaxError(f"{EXISTS_FIELD} needs a field name", value_pos)
            return Exists(path, position=start)
        if char in "[{":
            return self._range(field, start)
        if char == '"':
            return self._quoted_term(field, start)
        return self._unquoted_term(field, start)

    def _quoted_term(self, field: str, start: int) -> Match | Prefix:
        value = self._read_quoted()
        if self._peek() != "*":
            return Match(field, value, quoted=True, position=start)
        self.pos += 1
        return _prefix(field, value, self.pos - 1, start)

    def _unquoted_term(self, field: str, start: int) -> Match | Prefix:
        value = self._read_unquoted()
        if not value.endswith("*"):
            return Match(field, value, quoted=False, position=start)
        return _prefix(field, value[:-1], self.pos - 1, start)

    def _read_unquoted(self) -> str:
        value_pos = self.pos
        value = self._scan('()"')
        for offset, char in enumerate(value):
            if char == "\\":
                raise QuerySyntaxError("'\\' is only allowed inside quotes", value_pos + offset)
            if char == "*" and offset != len(value) - 1:
                raise QuerySyntaxError("'*' is only allowed at the end", value_pos + offset)
        return value

    def _read_quoted(self) -> str:
        open_pos = self.pos
        self.pos += 1
        chars: list[str] = []
        while char := self._peek():
            if char == '"':
                self.pos += 1
                return "".join(chars)
            if char == "\\":
                char = self.text[self.pos + 1 : self.pos + 2]
                if char not in ('"', "\\"):
                    raise QuerySyntaxError('only \\" and \\\\ may be escaped', self.pos)
                self.pos += 1
            chars.append(char)
            self.pos += 1
        raise QuerySyntaxError("unterminated quoted value", open_pos)

    def _range(self, field: str, start: int) -> Range:
        open_pos = self.pos
        self.pos += 1
        low_pos, low = self._range_word(open_pos, "a lower bound")
        to_pos, to = self._range_word(open_pos, "'TO'")
        if to != "TO":
            raise QuerySyntaxError(f"expected 'TO' in the range, found {to!r}", to_pos)
        high_pos, high = self._range_word(open_pos, "an upper bound")
        self._skip_space()
        if (close := self._peek()) not in ("]", "}"):
            self._unterminated_or(open_pos, "expected ']' or '}' to close the range")
        self.pos += 1
        if low == high == "*":
            raise QuerySyntaxError("a range needs at least one bound", open_pos)
        kinds = {
            "number" if _range_bound_kind(end, pos) == "number" else "datetime"
            for end, pos in ((low, low_pos), (high, high_pos))
            if end != "*"
        }
        if len(kinds) > 1:
            raise QuerySyntaxError("both range bounds must be numbers or both dates", high_pos)
        return Range(
            field,
            None if low == "*" else low,
            None if high == "*" else high,
            include_low=self.text[open_pos] == "[",
            include_high=close == "]",
            position=start,
        )

    def _range_word(self, open_pos: int, expected: str) -> tuple[int, str]:
        self._skip_space()
        position = self.pos
        word = self._scan('[]{}()"')
        if not word:
            self._unterminated_or(open_pos, f"expected {expected} in the range")
        return position, word

    def _unterminated_or(self, open_pos: int, message: str) -> NoReturn:
        if not self._peek():
            raise QuerySyntaxError("unterminated range", open_pos)
        raise QuerySyntaxError(message, self.pos)


def _prefix(field: str, prefix: str, star_pos: int, start: int) -> Prefix:
    if not prefix:
        raise QuerySyntaxError(f"'*' needs a prefix; use {EXISTS_FIELD}:{field}", star_pos)
    return Prefix(field, prefix, position=start)


def _range_bound_kind(text: str, position: int) -> str:
    kind = scalar_kind(text)
    if kind is None:
        raise QuerySyntaxError(
            f"range bound {text!r} is not a number, an ISO 8601 date or *", position
        )
    try:
        if kind == "number":
            check_number_text(text)
        else:
            check_date_bound(date.fromisoformat(text[:10]))
    except LimitError as exc:
        raise QuerySyntaxError(f"range bound {text!r}: {exc}", position) from None
    return kind


def check_number_text(text: str) -> None:
    """A number typed in a query (digits, optional fraction) within the signed 64-bit range,
    the range of every integer the service stores; LimitError otherwise."""
    if not INT64_MIN <= Decimal(text) <= INT64_MAX:
        raise LimitError(
            f"numbers must lie between {INT64_MIN} and {INT64_MAX}", code="number_out_of_range"
        )


# --- Parser --------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def parse(self) -> Node:
        node = self._or_expr(after=None)
        token = self._peek()
        # Operators and operands were all consumed above; only a stray ')' can be left over.
        if token.kind != "END":
            raise QuerySyntaxError("unbalanced ')'", token.position)
        return node

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _or_expr(self, after: _Token | None) -> Node:
        operands = [self._and_expr(after)]
        while self._peek().kind == "OR":
            operator = self._advance()
            operands.append(self._and_expr(operator))
        return _combine(Or, operands)

    def _and_expr(self, after: _Token | None) -> Node:
        operands = [self._unary(after)]
        while True:
            token = self._peek()
            if token.kind == "AND":
                operands.append(self._unary(self._advance()))
            elif token.kind in ("TERM", "(", "NOT"):
                operands.append(self._unary(None))
            else:
                return _combine(And, operands)

    def _unary(self, after: _Token | None) -> Node:
        token = self._peek()
        if token.kind != "NOT":
            return self._primary(after)
        self._advance()
        self._enter(token)
        operand = self._unary(token)
        self.depth -= 1
        return Not(operand)

    def _primary(self, after: _Token | None) -> Node:
        token = self._advance()
        if token.kind == "TERM":
            assert token.term is not None
            return token.term
        if token.kind == "(":
            self._enter(token)
            node = self._or_expr(token)
            if self._advance().kind != ")":
                raise QuerySyntaxError("unclosed '('", token.position)
            self.depth -= 1
            return node
        raise self._missing_term(token, after)

    def _enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError(f"a query may nest at most {MAX_DEPTH} levels", token.position)

    @staticmethod
    def _missing_term(found: _Token, after: _Token | None) -> QuerySyntaxError:
        if found.kind != "END":
            return QuerySyntaxError(f"expected a term, found {found.text!r}", found.position)
        if after is not None and after.kind == "(":
            return QuerySyntaxError("unclosed '('", after.position)
        if after is not None:
            return QuerySyntaxError(f"{after.text!r} must be followed by a term", after.position)
        return QuerySyntaxError("expected a term", found.position)


def _combine(kind: type[And] | type[Or], operands: list[Node]) -> Node:
    if len(operands) == 1:
        return operands[0]
    # Grouping does not change AND/OR, so `(a AND b) AND c` gets the same tree as `a AND b AND c`.
    flat: list[Node] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else (operand,))
    return kind(tuple(flat))


def parse(text: str) -> Node | None:
    """Parse a search query. Blank text means "no filter" and returns None."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            f"a query may be at most {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH
        )
    if not text.strip():
        return None
    if (fault := text_fault(text)) is not None:
        position = next(i for i, char in enumerate(text) if text_fault(char) is not None)
        raise QuerySyntaxError(fault, position)
    return _Parser(_Lexer(text).tokens()).parse()


# --- Rendering -----------------------------------------------------------------------------
