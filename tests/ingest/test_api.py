"""The ingestion journey on every database: the seed's contract, with its silent losses
turned into answers."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

import orjson
import pytest
from sqlalchemy import func, select

from globeguard.events.models import OutboxEvent
from globeguard.ingest.models import ExternalUser
from tests.helpers import bearer, make_admin

DEMO = {"username": "demo-user-ingestion", "user_id": "demo", "email": "demo@demo.com"}
PATH = "/api/v1/ingest/users"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(container) -> Clock:
    fake = Clock()
    container.ingest_buckets.clock = fake
    return fake


async def new_key(client, admin, *scopes: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/api-keys", headers=bearer(admin), json={"name": "k", "scopes": list(scopes)}
    )
    assert response.status_code == 201, response.text
    return {"X-API-KEY": response.json()["api_key"]}


@pytest.fixture
async def admin(client, container):
    return await make_admin(client, container)


@pytest.fixture
async def key(client, admin, clock):
    return await new_key(client, admin, "ingest")


def seed_query(message: dict | str, topic: str = "user-signup") -> str:
    text = message if isinstance(message, str) else orjson.dumps(message).decode()
    return f"{PATH}?" + urlencode({"topic": topic, "subject": "New user signup", "message": text})


async def stored(container) -> tuple[int, int]:
    """(external users, user.ingested events)."""
    async with container.db.read() as session:
        users = await session.scalar(select(func.count()).select_from(ExternalUser))
        events = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "user.ingested")
        )
    return users or 0, events or 0


async def test_the_seed_query_form_stores_the_user_and_announces_it(client, container, key, admin):
    response = await client.get(seed_query(DEMO), headers=key)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "OK" and body["user_id"] == "demo" and body["created"] is True

    record = await client.get("/api/v1/external-users/demo", headers=bearer(admin))
    assert record.status_code == 200
    assert record.json() | {"created_at": None} == {
        "user_id": "demo",
        "username": "demo-user-ingestion",
        "email": "demo@demo.com",
        "topic": "user-signup",
        "created_at": None,
    }
    async with container.db.read() as session:
        ingested = select(OutboxEvent).where(OutboxEvent.type == "user.ingested")
        event = (await session.execute(ingested)).scalars().one()
    assert event.aggregate_type == "external_user"
    # Thin: ids only, no email in the outbox.
    assert event.payload == {"user_id": "demo", "topic": "user-signup"}


async def test_post_takes_the_message_as_body_or_the_seed_envelope(client, container, key):
    plain = await client.post(PATH, headers=key, json=DEMO)
    assert plain.status_code == 200 and plain.json()["created"] is True
    envelope = {"topic": "user-signup", "subject": "x", "message": {**DEMO, "user_id": "two"}}
    wrapped = await client.post(PATH, headers=key, json=envelope)
    assert wrapped.status_code == 200 and wrapped.json()["created"] is True
    as_text = {"message": orjson.dumps({**DEMO, "user_id": "three"}).decode()}
    assert (await client.post(PATH, headers=key, json=as_text)).status_code == 200
    assert await stored(container) == (3, 3)


async def test_a_user_without_username_is_kept(client, container, key):
    # Auth0 database connections without usernames: the seed dropped every one of them.
    response = await client.post(PATH, headers=key, json={"user_id": "auth0|1", "email": "a@b.io"})
    assert response.status_code == 200
    assert await stored(container) == (1, 1)


async def test_a_replay_changes_nothing(client, container, key, admin):
    first = await client.get(seed_query(DEMO), headers=key)
    again = await client.post(PATH, headers=key, json=DEMO)
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["created_at"] == first.json()["created_at"]
    assert await stored(container) == (1, 1)
    record = await client.get("/api/v1/external-users/demo", headers=bearer(admin))
    assert record.json()["created_at"] == first.json()["created_at"]


async def test_a_contradicting_message_is_refused_not_applied(client, container, key, admin):
    await client.post(PATH, headers=key, json=DEMO)
    response = await client.post(PATH, headers=key, json={**DEMO, "email": "other@demo.com"})
    assert response.status_code == 409
    assert response.json()["code"] == "user_id_conflict"
    assert response.json()["fields"] == ["email"]
    record = await client.get("/api/v1/external-users/demo", headers=bearer(admin))
    assert record.json()["email"] == "demo@demo.com"
    assert await stored(container) == (1, 1)


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        ({"username": "u", "email": "demo@demo.com"}, ["user_id"]),
        ({"username": "u", "user_id": "x"}, ["email"]),
        ({"user_id": "x", "email": "not-an-email"}, ["email"]),
        ({"user_id": 7, "email": "demo@demo.com"}, ["user_id"]),
        ({"user_id": "", "email": "demo@demo.com"}, ["user_id"]),
        ({"user_id": "a\nb", "email": "demo@demo.com"}, ["user_id"]),
        ({"user_id": "x" * 256, "email": "demo@demo.com"}, ["user_id"]),
        ("not json", ["message"]),
        ("[1, 2]", ["message"]),
    ],
)
async def test_a_bad_message_is_a_400_naming_the_field_and_nothing_is_stored(
    client, container, key, message, fields
):
    response = await client.get(seed_query(message), headers=key)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "invalid_message"
    assert [e["field"] for e in problem["errors"]] == fields
    if isinstance(message, dict):
        posted = await client.post(PATH, headers=key, json=message)
        assert posted.status_code == 400
    assert await stored(container) == (0, 0)


@pytest.mark.parametrize(
    "request_args",
    [
        {"method": "GET", "url": f"{PATH}?topic=user-signup"},  # no message
        {"method": "POST", "url": PATH, "content": b"{not json"},
        {"method": "POST", "url": PATH, "content": b""},
        {"method": "POST", "url": PATH, "json": {"message": DEMO, "topic": 5}},
    ],
)
async def test_malformed_requests_are_400(client, container, key, request_args):
    response = await client.request(headers=key, **request_args)
    assert response.status_code == 400, response.text
    assert await stored(container) == (0, 0)


async def test_a_caller_never_picks_an_internal_target(client, container, key):
    arn = "arn:aws:sns:us-east-1:123456789012:internal"
    response = await client.get(seed_query(DEMO, topic=arn), headers=key)
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_topic"
    assert response.json()["topics"] == ["user-signup"]
    assert await stored(container) == (0, 0)


async def test_an_oversized_body_is_413(client, container, key):
    huge = {**DEMO, "padding": "x" * 20_000}
    response = await client.post(PATH, headers=key, json=huge)
    assert response.status_code == 413
    assert await stored(container) == (0, 0)


async def test_credentials(client, container, admin, clock):
    assert (await client.get(seed_query(DEMO))).status_code == 401
    bogus = {"X-API-KEY": "ggk_aaaaaaaaaaaaaaaa_" + "A" * 43}
    assert (await client.post(PATH, headers=bogus, json=DEMO)).status_code == 401
    other = await new_key(client, admin, "users:read")
    assert (await client.post(PATH, headers=other, json=DEMO)).status_code == 403
    assert await stored(container) == (0, 0)


async def test_over_the_rate_a_key_gets_429_with_retry_after(client, container, admin, clock):
    container.ingest_buckets.rate, container.ingest_buckets.burst = 1.0, 3
    key = await new_key(client, admin, "ingest")
    other = await new_key(client, admin, "ingest")
    for i in range(3):
        message = {**DEMO, "user_id": f"u{i}"}
        assert (await client.post(PATH, headers=key, json=message)).status_code == 200
    refused = await client.post(PATH, headers=key, json={**DEMO, "user_id": "late"})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["code"] == "rate_limited"
    # Another key has its own bucket; and the refused message was not stored.
    assert (await client.post(PATH, headers=other, json=DEMO)).status_code == 200
    assert await stored(container) == (4, 4)
    clock.now += 1.0
    assert (
        await client.post(PATH, headers=key, json={**DEMO, "user_id": "late"})
    ).status_code == 200


async def test_one_access_log_line_per_request_without_the_message(client, key, caplog):
    caplog.set_level(logging.INFO, logger="globeguard.ingest.access")
    await client.get(seed_query(DEMO), headers=key)
    await client.get(seed_query(DEMO))
    await client.get(seed_query("bad"), headers=key)
    lines = [r.getMessage() for r in caplog.records if r.name == "globeguard.ingest.access"]
    assert len(lines) == 3
    key_id = key["X-API-KEY"].split("_")[1]
    assert f"key={key_id}" in lines[0] and "status=200" in lines[0]
    assert "key=- " in lines[1] and "status=401" in lines[1]
    assert "status=400" in lines[2]
    assert all("ip=203.0.113.7" in line and "latency_ms=" in line for line in lines)
    assert not any("demo" in line or "topic" in line for line in lines)


async def test_requests_are_counted_by_status(client, container, key, admin):
    await client.post(PATH, headers=key, json=DEMO)
    await client.post(PATH, headers=key, json=DEMO)
    await client.post(PATH, json=DEMO)
    registry = container.metrics.registry
    for status, count in (("200", 2), ("401", 1)):
        labels = {"status": status}
        assert registry.get_sample_value("globeguard_ingest_requests_total", labels) == count


async def test_reading_an_external_user_needs_users_read(client, key, admin):
    assert (await client.get("/api/v1/external-users/demo", headers=key)).status_code == 403
    missing = await client.get("/api/v1/external-users/nobody", headers=bearer(admin))
    assert missing.status_code == 404


async def test_racing_deliveries_of_one_message_store_one_record(client, container, key):
    # The producer's retries can overlap the first attempt; none of them may fail or duplicate.
    responses = await asyncio.gather(*(client.post(PATH, headers=key, json=DEMO) for _ in range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert sum(r.json()["created"] for r in responses) == 1
    assert len({r.json()["created_at"] for r in responses}) == 1
    assert await stored(container) == (1, 1)
