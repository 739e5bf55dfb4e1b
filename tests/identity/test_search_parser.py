"""The search query parser: trees for good queries, positions for bad ones, and properties."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from globeguard.identity.search import QuerySyntaxError, parse, to_text
from globeguard.identity.search.nodes import (
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
    Range,
    is_plain_value,
)
from globeguard.kit.limits import LATEST_DATE

a1, b2, c3 = Match("a", "1"), Match("b", "2"), Match("c", "3")

PARSED = [
    ("status:active", Match("status", "active")),
    ("email:bob@x.com", Match("email", "bob@x.com")),
    ("user_metadata.subscription_tier:free", Match("user_metadata.subscription_tier", "free")),
    (
        'user_metadata.address.city:"New York"',
        Match("user_metadata.address.city", "New York", quoted=True),
    ),
    (r'given_name:"say \"hi\" \\ bye"', Match("given_name", 'say "hi" \\ bye', quoted=True)),
    ('given_name:""', Match("given_name", "", quoted=True)),
    ("last_login_ip:10.0.0.1:8080", Match("last_login_ip", "10.0.0.1:8080")),
    ("a:x]y", Match("a", "x]y")),
    ("a:AND", Match("a", "AND")),
    ("a:1 b:2", And((a1, b2))),
    ("a:1 AND b:2", And((a1, b2))),
    ("a:1 OR b:2 c:3", Or((a1, And((b2, c3))))),
    ("a:1 b:2 OR c:3", Or((And((a1, b2)), c3))),
    ("NOT a:1 AND b:2", And((Not(a1), b2))),
    ("NOT (a:1 AND b:2)", Not(And((a1, b2)))),
    ("NOT NOT a:1", Not(Not(a1))),
    ("-a:1 b:2", And((Not(a1), b2))),
    ("-(a:1 OR b:2)", Not(Or((a1, b2)))),
    ("(a:1 OR b:2) c:3", And((Or((a1, b2)), c3))),
    ("((a:1 AND b:2) AND c:3)", And((a1, b2, c3))),
    ("a:1 OR (b:2 OR c:3)", Or((a1, b2, c3))),
    ("a:1(b:2)", And((a1, b2))),
    ("  a:1  ", a1),
    ("_exists_:user_metadata.tier", Exists("user_metadata.tier")),
    ("username:bo*", Prefix("username", "bo")),
    ('username:"bo*"', Match("username", "bo*", quoted=True)),
    ('user_metadata.city:"New Y"*', Prefix("user_metadata.city", "New Y")),
    ("logins_count:[10 TO *]", Range("logins_count", "10", None)),
    ("logins_count:{1 TO 5.5}", Range("logins_count", "1", "5.5", False, False)),
    ("logins_count:[1 TO -5}", Range("logins_count", "1", "-5", True, False)),
    (
        "created_at:[2024-01-01T00:00:00Z TO 2025-01-01]",
        Range("created_at", "2024-01-01T00:00:00Z", "2025-01-01"),
    ),
    (
        "created_at:{* TO 2024-05-01T10:30+02:00]",
        Range("created_at", None, "2024-05-01T10:30+02:00", False, True),
    ),
    ("created_at:[ 2024-01-01  TO  2024-02-01 ]", Range("created_at", "2024-01-01", "2024-02-01")),
]


@pytest.mark.parametrize(("query", "expected"), PARSED)
def test_parse(query: str, expected: Node) -> None:
    assert parse(query) == expected


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_blank_query_means_no_filter(query: str) -> None:
    assert parse(query) is None


def test_terms_remember_where_their_field_starts() -> None:
    tree = parse("a:1 AND (NOT user_metadata.x:2)")
    assert isinstance(tree, And)
    first, negated = tree.operands
    assert isinstance(negated, Not)
    assert (first.position, negated.operand.position) == (0, 13)  # type: ignore[union-attr]


ERRORS = [
    ("a:1 AND", 4, "must be followed by a term"),
    ("a:1 OR", 4, "must be followed by a term"),
    ("NOT", 0, "must be followed by a term"),
    ("AND a:1", 0, "found 'AND'"),
    ("a:1 AND AND b:2", 8, "found 'AND'"),
    ("a:1 OR )", 7, "found ')'"),
    ("()", 1, "found ')'"),
    ("(a:1", 0, "unclosed '('"),
    ("a:1 ((b:2)", 4, "unclosed '('"),
    ("(", 0, "unclosed '('"),
    ("a:1)", 3, "unbalanced ')'"),
    ("a:", 2, "missing value"),
    ("a: b:2", 2, "missing value"),
    ("a:)", 2, "missing value"),
    (":x", 0, "missing field"),
    ("a b:1", 0, "expected field:value"),
    ("a:1 and b:2", 4, "uppercase"),
    ('"bob"', 0, "expected field:value"),
    ("a*b:1", 0, "invalid field"),
    ("a:b*c", 3, "only allowed at the end"),
    ("a:b**", 3, "only allowed at the end"),
    ("a:*", 2, "needs a prefix"),
    ('a:""*', 4, "needs a prefix"),
    ("a:b\\c", 3, "inside quotes"),
    ('a:"unterminated', 2, "unterminated quoted"),
    ('a:"bad \\n escape"', 7, "escaped"),
    ('a:"x"y', 5, "after the value"),
    ('a:x"y"', 3, "after the value"),
    ("- a:1", 0, "'-' must be directly followed"),
    ("a:1 -", 4, "'-' must be directly followed"),
    ("_exists_:", 9, "missing value"),
    ('_exists_:"x"', 9, "needs a field name"),
    ("a:[1 TO", 2, "unterminated range"),
    ("a:[1 TO 2", 2, "unterminated range"),
    ("a:[1 2]", 5, "expected 'TO'"),
    ("a:[1 to 2]", 5, "expected 'TO'"),
    ("a:[1 TO 2)", 9, "to close the range"),
    ("a:[1 TO ]", 8, "upper bound"),
    ("a:[* TO *]", 2, "at least one bound"),
    ("a:[abc TO 2]", 3, "not a number"),
    ("a:[2024-13-01 TO *]", 3, "not a number"),
    ("a:[1 TO 2024-01-01]", 8, "both range bounds"),
    ("a:[1 TO 2]x", 10, "after the value"),
    ("x" * (MAX_QUERY_LENGTH - 3) + ":1 b", MAX_QUERY_LENGTH, "at most"),
    ("(" * (MAX_DEPTH + 1) + "a:1" + ")" * (MAX_DEPTH + 1), MAX_DEPTH, "nest"),
    ("NOT " * (MAX_DEPTH + 1) + "a:1", 4 * MAX_DEPTH, "nest"),
    (" ".join(["a:1"] * (MAX_TERMS + 1)), 4 * MAX_TERMS, "terms"),
]


@pytest.mark.parametrize(("query", "position", "message"), ERRORS)
def test_syntax_error_position(query: str, position: int, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert caught.value.position == position
    assert message in caught.value.message


def test_limits_are_inclusive() -> None:
    assert parse("(" * MAX_DEPTH + "a:1" + ")" * MAX_DEPTH) == a1
    assert parse(" ".join(["a:1"] * MAX_TERMS)) is not None
    assert parse("a:" + "x" * (MAX_QUERY_LENGTH - 2)) is not None


def test_error_text_includes_position() -> None:
    with pytest.raises(QuerySyntaxError, match=r"at position 4"):
        parse("a:1 AND")


# --- properties ----------------------------------------------------------------------------

_fields = st.sampled_from(
    ["status", "email", "logins_count", "role", "user_metadata.tier", "app_metadata.a-b.c_d"]
)
_plain_values = st.text(
    alphabet=st.sampled_from("abcXYZ019-._@:[]{}é"), min_size=1, max_size=12
).filter(is_plain_value)
_numbers = st.from_regex(r"\A-?\d{1,4}(\.\d{1,3})?\Z")
_dates = st.dates(max_value=LATEST_DATE).map(lambda day: day.isoformat()) | st.datetimes(
    max_value=datetime(9998, 12, 31, 23, 59, 59), timezones=st.just(None)
).map(lambda moment: moment.isoformat(timespec="seconds") + "Z")
# Text a query may hold: kit.limits refuses NUL and lone surrogates anywhere in it.
_storable = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


def _ranges(bounds: st.SearchStrategy[str]) -> st.SearchStrategy[Range]:
    ends = st.tuples(st.none() | bounds, st.none() | bounds).filter(lambda ends: any(ends))
    return st.builds(
        lambda field, pair, low_in, high_in: Range(field, pair[0], pair[1], low_in, high_in),
        _fields,
        ends,
        st.booleans(),
        st.booleans(),
    )


_terms = st.one_of(
    st.builds(Match, _fields, _plain_values, st.just(False)),
    st.builds(Match, _fields, st.text(_storable, max_size=12), st.just(True)),
    st.builds(Prefix, _fields, st.text(_storable, min_size=1, max_size=12)),
    st.builds(Exists, _fields),
    _ranges(_numbers),
    _ranges(_dates),
)


def _canonical(kind: type[And] | type[Or]) -> Callable[[list[Node]], Node]:
    def build(operands: list[Node]) -> Node:
        # The parser flattens nested AND/AND and OR/OR, so generated trees must too.
        flat: list[Node] = []
        for operand in operands:
            flat.extend(operand.operands if isinstance(operand, kind) else (operand,))
        return kind(tuple(flat))

    return build


_trees = st.recursive(
    _terms,
    lambda children: st.one_of(
        children.map(Not),
        st.lists(children, min_size=2, max_size=4).map(_canonical(And)),
        st.lists(children, min_size=2, max_size=4).map(_canonical(Or)),
    ),
    max_leaves=20,
)


@given(_trees)
@settings(max_examples=400)
def test_rendered_tree_parses_back_to_itself(tree: Node) -> None:
    assert parse(to_text(tree)) == tree


# Query-shaped noise (whole terms, operators, stray syntax) reaches far more parser paths than
# uniformly random text, which almost always fails on its first character.
_whole_terms = st.sampled_from(
    ["a:1", "b:x*", 'c:"q \\" r"', "d:[1 TO 2}", "e:{2024-01-01 TO *]", "_exists_:f"]
)
_operators = st.sampled_from(["AND", "OR", "NOT", "-", "(", ")"])
_stray_syntax = st.sampled_from([*'TO:*"\\[]{}', "é", "g"])
_query_pieces = st.one_of(_whole_terms, _whole_terms, _operators, _operators, _stray_syntax)
_query_like_text = st.lists(
    st.tuples(_query_pieces, st.sampled_from(["", " ", " ", "\t"])), max_size=20
).map(lambda pairs: "".join(piece + gap for piece, gap in pairs))


@given(_query_like_text | st.text(max_size=60))
@settings(max_examples=1000)
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    error: QuerySyntaxError | None = None
    try:
        tree = parse(text)
    except QuerySyntaxError as raised:
        error = raised
    if error is not None:
        assert 0 <= error.position <= len(text)
    else:
        # What parses also renders to text that parses to the same tree.
        assert parse(to_text(tree)) == tree


# --- limits (kit.limits) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "position", "message"),
    [
        ("a:[0 TO 9223372036854775808]", 8, "numbers must lie between"),
        ("a:[-9223372036854775809 TO 0]", 3, "numbers must lie between"),
        ("a:[0 TO 9223372036854775807.5]", 8, "numbers must lie between"),
        ("a:[* TO 9999-12-31]", 8, "on or before 9998-12-31"),
        ("a:{9999-01-01T00:00:00Z TO *]", 3, "on or before 9998-12-31"),
        ("a:b\x00c", 3, "NUL"),
        ('a:"\x00"', 3, "NUL"),
        ("a:b OR c:\ud800", 9, "surrogates"),
    ],
)
def test_values_outside_the_limits_are_syntax_errors(query, position, message):
    with pytest.raises(QuerySyntaxError) as error:
        parse(query)
    assert error.value.position == position and message in error.value.message


@pytest.mark.parametrize(
    "query",
    [
        "a:[-9223372036854775808 TO 9223372036854775807]",
        "a:[* TO 9998-12-31]",
        "a:[0001-01-01 TO *]",
        "a:99999999999999999999",  # a single value may be text; the compiler decides
    ],
)
def test_values_at_the_limits_parse(query):
    assert parse(query) is not None


@given(st.text(max_size=20), st.text(max_size=20))
def test_a_nul_anywhere_is_refused(before, after):
    with pytest.raises(QuerySyntaxError):
        parse(f"a:{before}\x00{after}")
