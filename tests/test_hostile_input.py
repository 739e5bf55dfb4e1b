"""Hostile input over HTTP is a 4xx that changes nothing, on SQLite and PostgreSQL alike, and
in a stream or an import one bad record fails only itself. Limits: kit/limits.py."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from globeguard.identity.models import Role, User
from tests.helpers import STRONG, bearer, make_admin, signin, signup
from tests.jobs.support import import_file

NUL = "\x00"
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def _nested(depth: int, *, leaf: Any = 1, array: bool = False) -> Any:
    """A JSON value nested `depth` containers deep."""
    value = leaf
    for _ in range(depth):
        value = [value] if array else {"k": value}
    return value


async def _user_count(container) -> int:
    async with container.db.read() as session:
        return await session.scalar(select(func.count()).select_from(User))


async def _admin(client, container) -> dict[str, str]:
    return bearer(await make_admin(client, container, "root"))


def _is_refusal(response, *, codes: tuple[str, ...] | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    if codes is not None:
        assert response.json()["code"] in codes, response.text


def _is_oauth_refusal(response) -> None:
    """The token endpoint answers as RFC 6749 §5.2 says: JSON with an `error`."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] in ("invalid_request", "invalid_grant"), response.text


# --- sign-up: unauthenticated, so every limit matters here first ----------------------------


@pytest.mark.parametrize(
    ("extra", "code", "where"),
    [
        ({"user_metadata": {"n": 2**63}}, "number_out_of_range", "body.user_metadata.n"),
        ({"user_metadata": {"n": INT64_MIN - 1}}, "number_out_of_range", "body.user_metadata.n"),
        ({"user_metadata": {"n": [1, 10**30]}}, "number_out_of_range", "body.user_metadata.n.1"),
        ({"user_metadata": _nested(255)}, "too_deep", None),
        ({"user_metadata": {"a": _nested(255, array=True)}}, "too_deep", None),
        ({"user_metadata": _nested(33)}, "too_deep", None),
        ({"user_metadata": {"note": f"a{NUL}b"}}, "invalid_text", "body.user_metadata.note"),
        ({"user_metadata": {f"k{NUL}": 1}}, "invalid_text", "body.user_metadata.k\\x00"),
        ({"given_name": f"Ana{NUL}"}, "invalid_text", "body.given_name"),
        ({"family_name": NUL}, "invalid_text", "body.family_name"),
        ({"email": f"a{NUL}@example.com"}, "invalid_text", "body.email"),
    ],
)
async def test_signup_refuses_what_the_database_cannot_hold(client, container, extra, code, where):
    body = {"username": "mallory", "password": STRONG, **extra}
    response = await client.post("/api/v1/auth/signup", json=body)
    _is_refusal(response, codes=(code,))
    if where is not None:
        assert response.json()["errors"][0]["loc"] == where.split(".")
    assert await _user_count(container) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"username": "mallory", "password": "%s", "user_metadata": {"x": 1e309}}',
        b'{"username": "mallory", "password": "%s", "user_metadata": {"x": -Infinity}}',
        b'{"username": "mallory", "password": "%s", "user_metadata": {"x": NaN}}',
        b'{"username": "mallory", "password": "%s", "given_name": "\\ud800"}',
        b'{"username": "mallory", "password": "%s", "user_metadata": {"\\udfff": 1}}',
        b'{"username": "mall\\u0000ory", "password": "%s"}',
    ],
)
async def test_signup_refuses_json_other_services_cannot_read(client, container, raw):
    response = await client.post(
        "/api/v1/auth/signup",
        content=raw % STRONG.encode(),
        headers={"content-type": "application/json"},
    )
    _is_refusal(response)
    assert await _user_count(container) == 0


async def test_signup_accepts_the_limits_themselves(client):
    metadata = {"max": INT64_MAX, "min": INT64_MIN, "deep": _nested(31), "f": 1.5e308}
    tokens = await signup(client, "edgar", user_metadata=metadata)
    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert me.json()["user_metadata"] == metadata


# --- sign-in: a NUL username is a failed sign-in or a refusal, never a 500 ------------------


@pytest.mark.parametrize("username", [f"ana{NUL}", NUL, f"{NUL}@example.com"])
async def test_signin_with_nul_is_refused(client, username):
    await signup(client, "ana")
    response = await client.post(
        "/api/v1/auth/signin", json={"username": username, "password": STRONG}
    )
    _is_refusal(response, codes=("invalid_text", "invalid_credentials"))
    form = {"grant_type": "password", "username": username, "password": STRONG}
    response = await client.post("/api/v1/auth/token", data=form)
    _is_oauth_refusal(response)
    password = {"username": "ana", "password": f"{STRONG}{NUL}"}
    _is_refusal(await client.post("/api/v1/auth/signin", json=password))


# --- profile and admin updates --------------------------------------------------------------


@pytest.mark.parametrize(
    "patch",
    [
        {"user_metadata": {"n": 2**64}},
        {"user_metadata": {"n": _nested(40)}},
        {"user_metadata": {"s": NUL}},
        {"given_name": f"x{NUL}"},
    ],
)
async def test_patch_me_refuses_and_changes_nothing(client, patch):
    tokens = await signup(client, "ana", user_metadata={"plan": "pro"})
    headers = bearer(await signin(client, "ana"))
    response = await client.patch("/api/v1/users/me", json=patch, headers=headers)
    _is_refusal(response)
    me = (await client.get("/api/v1/users/me", headers=headers)).json()
    assert me["user_metadata"] == {"plan": "pro"} and me["given_name"] is None, tokens


@pytest.mark.parametrize(
    "patch",
    [
        {"app_metadata": {"n": INT64_MAX + 1}},
        {"app_metadata": {"n": _nested(300, array=True)}},
        {"app_metadata": {NUL: "x"}},
        {"family_name": NUL},
    ],
)
async def test_patch_user_refuses_and_changes_nothing(client, container, patch):
    admin = await _admin(client, container)
    user_id = (await signup(client, "ana"))["user_id"]
    response = await client.patch(f"/api/v1/users/{user_id}", json=patch, headers=admin)
    _is_refusal(response)
    user = (await client.get(f"/api/v1/users/{user_id}", headers=admin)).json()
    assert user["app_metadata"] == {} and user["family_name"] is None


# --- names of other things: API keys, roles, subscriptions ----------------------------------


async def test_names_with_nul_are_refused_everywhere(client, container):
    admin = await _admin(client, container)
    key = await client.post("/api/v1/api-keys", json={"name": f"k{NUL}"}, headers=admin)
    _is_refusal(key, codes=("invalid_text",))
    assert key.json()["errors"][0]["loc"] == ["body", "name"]
    role = {"name": "auditor", "description": f"reads{NUL}"}
    _is_refusal(await client.post("/api/v1/roles", json=role, headers=admin))
    subscription = {"name": "hook", "target": f"https://example.com/{NUL}"}
    _is_refusal(await client.post("/api/v1/subscriptions", json=subscription, headers=admin))
    async with container.db.read() as session:
        assert await session.scalar(select(Role).where(Role.name == "auditor")) is None
    keys = (await client.get("/api/v1/api-keys", headers=admin)).json()
    assert keys == [] or all(NUL not in k["name"] for k in keys)


@pytest.mark.parametrize("expires_at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
async def test_api_key_expiry_outside_the_calendar_is_refused(client, container, expires_at):
    admin = await _admin(client, container)
    response = await client.post(
        "/api/v1/api-keys", json={"name": "k", "expires_at": expires_at}, headers=admin
    )
    _is_refusal(response)


# --- user search (q=) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "q",
    [
        "created_at:[* TO 9999-12-31]",
        "created_at:{9999-12-31 TO *]",
        "created_at:0001-01-01T00:00:00+05:00",
        "created_at:9999-12-31T23:59:59-05:00",
        "created_at:9999-12-31",
        "updated_at:[0000-01-01 TO *]",
        "last_login_at:[+10000-01-01 TO *]",
        "user_metadata.since:[* TO 9999-12-31]",
        "user_metadata.since:{9999-12-31 TO *]",
        "logins_count:9223372036854775808",
        "logins_count:-9223372036854775809",
        "logins_count:[0 TO 99999999999999999999]",
        "user_metadata.n:[0 TO 99999999999999999999]",
        "user_metadata.n:[0 TO 1" + "0" * 400 + ".5]",
        f"username:a{NUL}b",
        f'given_name:"{NUL}"',
        f"user_metadata.plan:pro{NUL}*",
        f"role:{NUL}",
    ],
)
async def test_hostile_queries_are_refused(client, container, q):
    admin = await _admin(client, container)
    await signup(client, "ana", user_metadata={"since": "2020-01-01", "n": 5})
    response = await client.get("/api/v1/users", params={"q": q}, headers=admin)
    _is_refusal(response)


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("logins_count:[0 TO 9223372036854775807]", True),
        ("logins_count:[-9223372036854775808 TO 0]", True),
        ("user_metadata.n:[-9223372036854775808 TO 9223372036854775807]", True),
        ("created_at:[1970-01-01 TO 9998-12-31]", True),
        ("created_at:[0001-01-01 TO *]", True),
        ("created_at:{* TO 0001-01-01T00:00:00-05:00]", False),
        # Too long for a stored number, so it can only match text.
        ("user_metadata.n:99999999999999999999", False),
        ("user_metadata.since:[1900-01-01 TO 9998-12-31]", True),
    ],
)
async def test_queries_at_the_limits_still_run(client, container, q, found):
    admin = await _admin(client, container)
    await signup(client, "ana", user_metadata={"since": "2020-01-01", "n": 5})
    response = await client.get("/api/v1/users", params={"q": q}, headers=admin)
    assert response.status_code == 200, response.text
    assert ("ana" in [u["username"] for u in response.json()["items"]]) is found


# --- cursors ---------------------------------------------------------------------------------


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Any id: a forged cursor names no user. Fixed, so every test process collects the same tests.
SOME_ID = "93c03996-6d7e-4258-8e93-716c52e56144"


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(f"0001-01-01T00:00:00+05:00|{SOME_ID}"),
        _cursor(f"9999-12-31T23:59:59-05:00|{SOME_ID}"),
        _cursor(f"9999-12-31T23:59:59.999999+00:00|{SOME_ID}"),
        _cursor(f"0001-01-01T00:00:00|{SOME_ID}"),
        _cursor(f"2024-01-01T00:00:00{NUL}|{SOME_ID}"),
        _cursor("2024-01-01T00:00:00+00:00|" + NUL),
        f"abc{NUL}",
    ],
)
async def test_forged_user_cursors_are_refused(client, container, cursor):
    admin = await _admin(client, container)
    response = await client.get("/api/v1/users", params={"cursor": cursor}, headers=admin)
    _is_refusal(response, codes=("invalid_cursor", "invalid_text"))


async def test_a_cursor_without_an_offset_still_pages(client, container):
    """Naive times are UTC everywhere in the service; PostgreSQL must not choke on one."""
    admin = await _admin(client, container)
    await signup(client, "ana")
    cursor = _cursor(f"2000-01-01T00:00:00|{uuid.UUID(int=0)}")
    response = await client.get("/api/v1/users", params={"cursor": cursor}, headers=admin)
    assert response.status_code == 200, response.text
    assert {u["username"] for u in response.json()["items"]} >= {"ana"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit?after=9223372036854775808",
        "/api/v1/events?after=99999999999999999999999",
    ],
)
async def test_sequence_cursors_beyond_64_bits_are_refused(client, container, path):
    admin = await _admin(client, container)
    _is_refusal(await client.get(path, headers=admin))


async def test_login_history_cursor_beyond_64_bits_is_refused(client, container):
    admin = await _admin(client, container)
    user_id = (await signup(client, "ana"))["user_id"]
    response = await client.get(
        f"/api/v1/users/{user_id}/logins", params={"before": 2**63}, headers=admin
    )
    _is_refusal(response)


# --- login events: one object, and NDJSON where one bad line fails only itself --------------

BAD_TIMES = [
    "0001-01-01T00:00:00+05:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "+10000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    253_402_300_799,
    1e309,
    -1,
]


def _event(n: int, **overrides: Any) -> dict[str, Any]:
    return {
        "subject": f"user-{n}",
        "occurred_at": f"2024-05-01T10:{n % 60:02d}:00Z",
        "ip": "81.2.69.160",
        **overrides,
    }


@pytest.mark.parametrize("occurred_at", BAD_TIMES)
async def test_one_login_event_outside_the_calendar_is_refused(client, container, occurred_at):
    admin = await _admin(client, container)
    raw = json.dumps(_event(1, occurred_at=occurred_at)).encode()  # 1e309 → Infinity
    response = await client.post(
        "/api/v1/login-events",
        content=raw.replace(b"Infinity", b"1e309"),
        headers={**admin, "content-type": "application/json"},
    )
    _is_refusal(response)


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": f"a{NUL}"},
        {"user_agent": f"curl{NUL}"},
        {"failure_reason": NUL},
        {"event_uuid": f"e{NUL}"},
    ],
)
async def test_one_login_event_with_nul_is_refused(client, container, overrides):
    admin = await _admin(client, container)
    response = await client.post("/api/v1/login-events", json=_event(1, **overrides), headers=admin)
    _is_refusal(response)


async def test_a_stream_keeps_every_good_line_and_names_each_bad_one(client, container):
    admin = await _admin(client, container)
    bad: list[bytes] = [
        json.dumps(_event(100, occurred_at=t)).replace("Infinity", "1e309").encode()
        for t in BAD_TIMES
    ]
    bad += [
        orjson.dumps(_event(200, subject=f"x{NUL}")),
        orjson.dumps(_event(201, user_agent=NUL)),
        orjson.dumps(_event(202, failure_reason=f"bad{NUL}")),
        b'{"subject": "\\ud800", "occurred_at": "2024-05-01T10:00:00Z", "ip": "81.2.69.160"}',
    ]
    lines: list[bytes] = []
    bad_numbers: list[int] = []
    for n in range(40):
        lines.append(orjson.dumps(_event(n)))
        if n < len(bad):
            lines.append(bad[n])
            bad_numbers.append(len(lines))
    response = await client.post(
        "/api/v1/login-events",
        content=b"\n".join(lines) + b"\n",
        headers={**admin, "content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["accepted"] == 40
    assert [e["line"] for e in report["errors"]] == bad_numbers
    assert all(e["reason"] for e in report["errors"])


# --- Superman -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"username": f"a{NUL}"},
        {"event_uuid": NUL},
        {"unix_timestamp": 2**64},
        {"unix_timestamp": 253_402_300_799},
        {"ip_address": f"81.2.69.160{NUL}"},
    ],
)
async def test_superman_refuses_what_it_cannot_store(client, container, overrides):
    admin = await _admin(client, container)
    key = await client.post(
        "/api/v1/api-keys", json={"name": "sm", "scopes": ["login_events:write"]}, headers=admin
    )
    body = {
        "username": "bob",
        "unix_timestamp": 1_514_764_800,
        "event_uuid": str(uuid.uuid4()),
        "ip_address": "81.2.69.160",
        **overrides,
    }
    for content_type in ("application/json", "text/plain"):
        response = await client.post(
            "/v1/",
            content=json.dumps(body).encode(),
            headers={"X-API-KEY": key.json()["api_key"], "content-type": content_type},
        )
        _is_refusal(response)


# --- imports: one bad record is rejected in the report, the rest imported --------------------


async def test_an_import_rejects_bad_records_and_imports_the_rest(client, container):
    admin = await _admin(client, container)
    bad = [
        {"email": "b1@example.com", "given_name": f"x{NUL}"},
        {"email": "b4@example.com", "app_metadata": _nested(255)},
        {"email": "b5@example.com", "app_metadata": {"a": _nested(100, array=True)}},
        {"email": "b6@example.com", "user_metadata": {NUL: 1}},
        {"email": "b7@example.com", "created_at": "0001-01-01T00:00:00+05:00"},
        {"email": "b8@example.com", "updated_at": "9999-12-31T23:59:59-05:00"},
        {
            "email": "b9@example.com",
            "last_login": "9999-12-31T23:59:59Z",
            "last_ip": "81.2.69.160",
        },
        {"email": "b10@example.com", "family_name": NUL},
        {"user_id": f"auth0|{NUL}", "email": "b11@example.com"},
    ]
    good = [{"email": f"g{n}@example.com", "user_metadata": {"n": INT64_MAX}} for n in range(5)]
    records = [r for pair in zip(good, bad, strict=False) for r in pair] + bad[len(good) :]
    content = "".join(json.dumps(r) + "\n" for r in records).encode()
    job = await import_file(client, container, admin, content)
    assert job.status == "completed", job.error
    assert job.result["inserted"] == len(good)
    assert job.result["failed"] == len(bad)
    reasons = [e["reason"] for e in job.result["errors"]]
    assert len(reasons) == len(bad) and all(reasons)
    async with container.db.read() as session:
        emails = set(await session.scalars(select(User.email)))
    assert {r["email"] for r in good} <= emails
    assert not {r["email"] for r in bad} & emails


async def test_an_import_array_fails_only_its_bad_records(client, container):
    admin = await _admin(client, container)
    records = [
        {"email": "g1@example.com"},
        {"email": "b1@example.com", "given_name": NUL},
        {"email": "b2@example.com", "user_metadata": _nested(40)},
        {"email": "g2@example.com"},
    ]
    job = await import_file(client, container, admin, json.dumps(records).encode())
    assert job.status == "completed", job.error
    assert job.result["inserted"] == 2 and job.result["failed"] == 2


# --- analytics filters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"to": "9999-12-31"},
        {"from": "9999-12-31"},
        {"from": "0001-01-01", "to": "9999-12-31"},
        {"q": "created_at:[* TO 9999-12-31]"},
        {"q": f"username:{NUL}"},
    ],
)
@pytest.mark.parametrize("report", ["heatmap", "top-locations", "suspicious-travel"])
async def test_analytics_filters_at_the_end_of_the_calendar_are_refused(
    client, container, params, report
):
    admin = await _admin(client, container)
    response = await client.get(f"/api/v1/analytics/{report}", params=params, headers=admin)
    _is_refusal(response)
