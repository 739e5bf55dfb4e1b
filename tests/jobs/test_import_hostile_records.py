"""Hostile values inside import records, through the API, on SQLite and PostgreSQL: a record
holding a number or text the service cannot store is rejected with its reason, exactly that
record, and every record around it is imported unchanged, in both file formats."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from globeguard.identity.models import User
from tests.helpers import bearer, make_admin
from tests.jobs.support import import_file

RANGE = "integers must lie between -9223372036854775808 and 9223372036854775807"
SURROGATE = "text may not contain unpaired surrogates"


def _good(n: int) -> bytes:
    return orjson.dumps({"user_id": f"auth0|good{n}", "email": f"good{n}@example.com"})


def _with_metadata(n: int, value_json: bytes) -> bytes:
    """A record whose `user_metadata.n` is `value_json` verbatim (orjson cannot write the
    hostile values, which is the point)."""
    return b'{"user_id": "auth0|m%d", "email": "m%d@example.com", "user_metadata": {"n": %s}}' % (
        n,
        n,
        value_json,
    )


def _ndjson(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _array(elements: list[bytes]) -> bytes:
    return b"[\n  " + b",\n  ".join(elements) + b"\n]\n"


async def _import(client, container, content: bytes, filename: str) -> Any:
    admin = bearer(await make_admin(client, container, "root"))
    job = await import_file(client, container, admin, content, filename=filename)
    assert job.status == "completed", job.error
    return job


async def _stored(container) -> dict[str, dict[str, Any]]:
    """Every imported user's email → user_metadata (the admin left out)."""
    async with container.db.read() as session:
        users = (await session.execute(select(User.email, User.user_metadata))).all()
    return {email: meta for email, meta in users if email and email != "root@example.com"}


def _reasons(job: Any, position: str) -> dict[int, str]:
    return {error[position]: error["reason"] for error in job.result["errors"]}


BIG = b"123456789012345678901234567890"


async def test_ndjson_line_with_an_integer_beyond_64_bits_fails_alone(client, container):
    lines = [_good(1), _with_metadata(1, BIG), _good(2)]
    job = await _import(client, container, _ndjson(lines), "users.ndjson")
    assert job.result["inserted"] == 2 and job.result["failed"] == 1
    assert _reasons(job, "line") == {2: f"user_metadata.n: {RANGE} (signed 64-bit)"}
    # Not stored as a float that merely looks like it (1.2345678901234568e+29).
    assert set(await _stored(container)) == {"good1@example.com", "good2@example.com"}


async def test_array_element_with_an_integer_beyond_64_bits_fails_alone(client, container):
    elements = [_good(1), _with_metadata(1, BIG), _good(2), _good(3)]
    job = await _import(client, container, _array(elements), "users.json")
    assert job.result["inserted"] == 3 and job.result["failed"] == 1
    assert _reasons(job, "index") == {1: f"user_metadata.n: {RANGE} (signed 64-bit)"}
    assert set(await _stored(container)) == {f"good{n}@example.com" for n in (1, 2, 3)}


async def test_array_element_with_a_lone_surrogate_fails_alone(client, container):
    lone = b'{"user_id": "auth0|s", "email": "s@example.com", "given_name": "a\\ud800b"}'
    elements = [_good(1), lone, _good(2)]
    job = await _import(client, container, _array(elements), "users.json")
    assert job.result["inserted"] == 2 and job.result["failed"] == 1
    assert _reasons(job, "index") == {1: f"given_name: {SURROGATE} (\\ud800-\\udfff)"}
    # Not imported with the surrogate turned into '?'.
    assert set(await _stored(container)) == {"good1@example.com", "good2@example.com"}


async def test_ndjson_line_with_a_lone_surrogate_names_the_reason(client, container):
    lone = b'{"user_id": "auth0|s", "email": "s@example.com", "user_metadata": {"k": "\\udc00"}}'
    job = await _import(client, container, _ndjson([lone, _good(1)]), "users.ndjson")
    assert job.result["inserted"] == 1 and job.result["failed"] == 1
    assert _reasons(job, "line") == {1: f"user_metadata.k: {SURROGATE} (\\ud800-\\udfff)"}


# The edges of the range, and what lies just past them, in one file per format.
NEIGHBOURS: list[tuple[bytes, int | None]] = [
    (b"9223372036854775807", 2**63 - 1),
    (b"-9223372036854775808", -(2**63)),
    (b"9223372036854775808", None),
    (b"-9223372036854775809", None),
    (b"18446744073709551616", None),
    (b"1e309", None),
    (b"-1e309", None),
]


def _neighbour_expectations(first: int) -> tuple[dict[int, str], dict[str, dict[str, Any]]]:
    refused, stored = {}, {}
    for n, (text, value) in enumerate(NEIGHBOURS):
        if value is None:
            reason = "numbers must be finite" if b"e" in text else f"{RANGE} (signed 64-bit)"
            refused[first + n] = f"user_metadata.n: {reason}"
        else:
            stored[f"m{n}@example.com"] = {"n": value}
    return refused, stored


@pytest.mark.parametrize(
    ("encode", "filename", "position", "first"),
    [(_ndjson, "users.ndjson", "line", 1), (_array, "users.json", "index", 0)],
    ids=["ndjson", "array"],
)
async def test_integers_at_the_edges_of_64_bits(
    client, container, encode, filename, position, first
):
    records = [_with_metadata(n, text) for n, (text, _) in enumerate(NEIGHBOURS)] + [_good(1)]
    job = await _import(client, container, encode(records), filename)
    refused, stored = _neighbour_expectations(first=first)
    assert _reasons(job, position) == refused
    assert await _stored(container) == {**stored, "good1@example.com": {}}
