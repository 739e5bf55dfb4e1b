"""`POST /api/v1/ingest/auth0-logs`: Auth0's custom-webhook log stream."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from globeguard.jobs.auth0.logstream import items_of, parse_batch
from globeguard.jobs.records import user_id_of
from globeguard.travel.models import LoginEvent
from tests.conftest import make_settings

TOKEN = "log-stream-token-0123456789"


@pytest.fixture
def settings(database_url, tmp_path):
    # No learning period, so the second sign-in of a user is already judged.
    return make_settings(
        database_url,
        tmp_path,
        auth0={"log_stream_token": TOKEN},
        travel={"learning_logins": 0},
    )


def log(log_id: str, type_: str, **data) -> dict:
    return {"log_id": log_id, "data": {"type": type_, **data}}


BATCH = [
    log("9001", "s", date="2026-11-20T10:00:00.000Z", ip="81.2.69.142", user_id="auth0|u1",
        user_agent="Mozilla/5.0"),
    log("9002", "s", date="2026-11-20T11:00:00.000Z", ip="216.160.83.56", user_id="auth0|u1"),
    log("9003", "fp", date="2026-11-20T11:05:00.000Z", ip="89.160.20.112", user_id="auth0|u2"),
    log("9004", "fu", date="2026-11-20T11:06:00.000Z", ip="89.160.20.112", user_name="Nobody@x.io"),
    log("9005", "sapi", date="2026-11-20T11:07:00.000Z", ip="89.160.20.112"),
    log("9006", "s", date="2026-11-20T11:08:00.000Z", ip="not-an-ip", user_id="auth0|u3"),
]  # fmt: skip


async def test_sign_ins_become_login_events_with_travel_verdicts(client):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await client.post(
        "/api/v1/ingest/auth0-logs", content=orjson.dumps(BATCH), headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 4 and body["ignored"] == 1
    assert [e["index"] for e in body["errors"]] == [5]
    # London to Seattle in an hour: impossible.
    assert body["suspicious"] == 1
    # Auth0 retries a batch it thinks failed: the same log ids are duplicates, not new logins.
    lines = b"\n".join(orjson.dumps(item) for item in BATCH[:2])
    replay = await client.post(
        "/api/v1/ingest/auth0-logs", content=lines, headers={"Authorization": TOKEN}
    )
    assert replay.json()["duplicates"] == 2 and replay.json()["accepted"] == 0


async def test_events_are_filed_under_the_imported_users_ids(client, container):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    await client.post("/api/v1/ingest/auth0-logs", content=orjson.dumps(BATCH[3]), headers=headers)
    await client.post("/api/v1/ingest/auth0-logs", content=orjson.dumps(BATCH[2]), headers=headers)
    async with container.db.read() as session:
        rows = (
            await session.execute(
                select(LoginEvent.subject, LoginEvent.success, LoginEvent.failure_reason)
            )
        ).all()
    assert set(rows) == {
        ("nobody@x.io", False, "unknown_user"),
        (str(user_id_of("auth0|u2")), False, "wrong_password"),
    }


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", "Bearer " + TOKEN + "x", "Basic " + TOKEN]
)
async def test_a_wrong_token_is_401(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post("/api/v1/ingest/auth0-logs", content=b"[]", headers=headers)
    assert response.status_code == 401


async def test_bad_batches_are_4xx(client):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await client.post(
        "/api/v1/ingest/auth0-logs", content=b"{not json\n", headers=headers
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_log_batch"
    big = b"[" + b" " * (11 * 1024 * 1024) + b"]"
    assert (
        await client.post("/api/v1/ingest/auth0-logs", content=big, headers=headers)
    ).status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        orjson.dumps(BATCH[:2]),  # JSON array
        b"\n".join(orjson.dumps(i) for i in BATCH[:2]) + b"\n",  # JSON lines
    ],
)
def test_every_batch_shape_parses_alike(body):
    parsed = parse_batch(items_of(body))
    assert [e.event_uuid for _, e in parsed.events] == ["9001", "9002"]
    assert parse_batch(items_of(orjson.dumps(BATCH[0]))).events[0][1].event_uuid == "9001"
