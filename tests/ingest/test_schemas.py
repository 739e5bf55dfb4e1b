"""Parsing the seed's message: every input is either a valid user or an InvalidMessage
naming fields; nothing else escapes (which would be a 500)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.ingest.schemas import InvalidMessage, parse_message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            '{"username":"demo-user-ingestion","user_id":"demo","email":"demo@demo.com"}',
            ("demo", "demo@demo.com", "demo-user-ingestion"),
        ),
        ({"user_id": " auth0|1 ", "email": "a@b.io"}, ("auth0|1", "a@b.io", None)),
        ({"user_id": "x", "email": "Ann@Example.COM"}, ("x", "Ann@example.com", None)),
        ({"user_id": "x", "email": "a@b.io", "extra": {"kept": False}}, ("x", "a@b.io", None)),
        ({"user_id": "x", "email": "a@b.io", "username": None}, ("x", "a@b.io", None)),
    ],
)
def test_valid_messages(value, expected):
    message = parse_message(value)
    assert (message.user_id, message.email, message.username) == expected


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        ("", ["message"]),
        ("null", ["message"]),
        ('"a string"', ["message"]),
        ({}, ["user_id", "email"]),
        ({"user_id": None, "email": "a@b.io"}, ["user_id"]),
        ({"user_id": ["x"], "email": "a@b.io"}, ["user_id"]),
        ({"user_id": "x", "email": "a@b.io", "username": ""}, ["username"]),
        ({"user_id": "x", "email": "a@b.io", "username": "tab\there"}, ["username"]),
        ({"user_id": "x", "email": "@b.io"}, ["email"]),
        ({"user_id": "x", "email": "a@" + "b" * 320 + ".io"}, ["email"]),
    ],
)
def test_invalid_messages_name_their_fields(value, fields):
    with pytest.raises(InvalidMessage) as caught:
        parse_message(value)
    assert [e["field"] for e in caught.value.errors] == fields


def test_errors_never_echo_the_input():
    with pytest.raises(InvalidMessage) as caught:
        parse_message({"user_id": "x", "email": "secret-person@@nowhere"})
    assert "secret-person" not in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
fields = st.fixed_dictionaries(
    {},
    optional={"user_id": json_values, "email": json_values, "username": json_values},
)


@given(value=json_values | fields | st.text() | st.binary())
def test_any_input_is_a_user_or_an_invalid_message(value):
    try:
        message = parse_message(value)
    except InvalidMessage as exc:
        errors = exc.errors
    else:
        assert message.user_id and "@" in message.email
        return
    assert errors and all(e["field"] and e["reason"] for e in errors)


@given(
    user_id=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=255
    ),
    username=st.none() | st.from_regex(r"[a-z0-9._-]{1,64}", fullmatch=True),
)
def test_printable_ids_are_accepted_as_sent(user_id, username):
    raw = orjson.dumps({"user_id": user_id, "email": "someone@example.org", "username": username})
    message = parse_message(raw)
    assert (message.user_id, message.username) == (user_id, username)
