"""`POST /api/v1/login-events`: one event or an NDJSON stream, bad lines reported, good kept."""

from __future__ import annotations

import httpx
import orjson
import pytest

from globeguard.app import create_app
from globeguard.travel.ingest import lines
from tests.conftest import make_settings, wipe
from tests.helpers import bearer, make_admin
from tests.support.mmdb import city_record, write_city_db

NY, LONDON, SYDNEY = "203.1.1.1", "203.2.2.2", "203.3.3.3"
T0 = 1_700_000_000


@pytest.fixture
async def setup(database_url, tmp_path):
    db_file = write_city_db(
        tmp_path / "city.mmdb",
        {
            NY: city_record(40.7128, -74.0060, radius=5, country="US", city=("New York", 5128581)),
            LONDON: city_record(51.5074, -0.1278, radius=5, country="GB", city=("London", 2643743)),
            SYDNEY: city_record(
                -33.8688, 151.2093, radius=5, country="AU", city=("Sydney", 2147714)
            ),
        },
    )
    settings = make_settings(
        database_url, tmp_path, geoip={"city_db": db_file}, travel={"learning_logins": 0}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            container = app.state.container
            admin = await make_admin(client, container)
            key = await client.post(
                "/api/v1/api-keys",
                headers=bearer(admin),
                json={"name": "idp", "scopes": ["login_events:write"]},
            )
            headers = {"X-API-KEY": key.json()["api_key"]}
            try:
                yield client, headers, admin
            finally:
                await wipe(container)


def ndjson(*events) -> bytes:
    return b"\n".join(e if isinstance(e, bytes) else orjson.dumps(e) for e in events) + b"\n"


def event(subject, ip, t, **extra):
    return {"subject": subject, "ip": ip, "occurred_at": t, **extra}


async def post_stream(client, headers, body: bytes) -> dict:
    response = await client.post(
        "/api/v1/login-events",
        content=body,
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_one_event_gets_a_graded_verdict(setup):
    client, headers, _ = setup
    first = await client.post(
        "/api/v1/login-events", headers=headers, json=event("dana", NY, T0, event_uuid="e1")
    )
    assert first.status_code == 201 and first.json()["verdict"] == "none"
    second = await client.post(
        "/api/v1/login-events",
        headers=headers,
        json=event("dana", LONDON, T0 + 600, event_uuid="e2"),
    )
    body = second.json()
    assert body["verdict"] == "impossible"
    journey = body["verdict_reasons"]  # the journey from the preceding login
    assert journey["grade"] == "impossible"
    assert journey["earlier"] == "e1" and journey["later"] == "e2"
    replay = await client.post(
        "/api/v1/login-events",
        headers=headers,
        json=event("dana", LONDON, T0 + 600, event_uuid="e2"),
    )
    assert replay.json() == {"duplicate": True}


async def test_bad_lines_are_reported_and_good_lines_kept(setup):
    client, headers, _ = setup
    body = ndjson(
        event("erin", NY, T0),
        b"{not json",
        event("erin", "999.1.1.1", T0 + 1),
        {"subject": "erin", "ip": NY},  # no time
        event("", NY, T0 + 2),
        event("erin", NY, 1_700_000_000_000),  # milliseconds
        b"[1, 2]",
        event("erin", SYDNEY, T0 + 3600, event_uuid="x1"),
        event("erin", LONDON, T0 + 7200, event_uuid="x1"),  # uuid reused for another event
    )
    report = await post_stream(client, headers, body)
    assert report["accepted"] == 2
    assert [e["line"] for e in report["errors"]] == [2, 3, 4, 5, 6, 7, 9]
    assert report["error_count"] == 7
    assert "not JSON" in report["errors"][0]["reason"]
    assert "not an IP address" in report["errors"][1]["reason"]
    assert report["errors"][1]["reason"].startswith("ip:")
    assert "occurred_at" in report["errors"][2]["reason"]


async def test_out_of_order_stream_grades_like_time_order(setup):
    client, headers, _ = setup
    # posted newest first; NY → Sydney in 1 h is impossible whichever order they arrive in
    report = await post_stream(
        client,
        headers,
        ndjson(
            event("fay", SYDNEY, T0 + 3600, event_uuid="f2"),
            event("fay", NY, T0, event_uuid="f1"),
        ),
    )
    # the later login of the impossible pair carries the verdict
    assert report["accepted"] == 2 and report["suspicious"] == 1
    again = await post_stream(
        client, headers, ndjson(event("fay", SYDNEY, T0 + 3600, event_uuid="f2"))
    )
    assert again["duplicates"] == 1 and again["accepted"] == 0


async def test_a_large_stream_across_batches(setup):
    client, headers, _ = setup
    events = [event(f"user{i % 50}", (NY, LONDON)[i % 2], T0 + i * 60) for i in range(2500)]
    report = await post_stream(client, headers, ndjson(*events))
    assert report["accepted"] == 2500 and report["errors"] == []


async def test_errors_are_listed_in_line_order_while_batches_are_stored_as_the_next_is_read(
    setup, monkeypatch
):
    """Batch n is stored while batch n+1 is parsed; the report still lists batch n's storage
    errors before the refusals of the lines after it."""
    from globeguard.travel import ingest_routes

    monkeypatch.setattr(ingest_routes, "BATCH_SIZE", 2)
    client, headers, _ = setup
    body = ndjson(
        event("gus", NY, T0, event_uuid="g1"),
        event("gus", LONDON, T0 + 60, event_uuid="g1"),  # batch 1: the uuid of line 1
        b"{not json",
        event("gus", NY, T0 + 120, event_uuid="g2"),
        event("gus", SYDNEY, T0 + 180, event_uuid="g1"),  # batch 2: the uuid stored by 1
        b"[1]",
        event("gus", NY, T0 + 240, event_uuid="g3"),
        event("gus", NY, T0 + 300, event_uuid="g4"),
        event("gus", NY, T0 + 360),
    )
    report = await post_stream(client, headers, body)
    assert [e["line"] for e in report["errors"]] == [2, 3, 5, 6]
    assert "used for another event" in report["errors"][0]["reason"]
    assert "not JSON" in report["errors"][1]["reason"]
    assert report["accepted"] == 5 and report["error_count"] == 4


async def test_needs_the_scope(setup):
    client, _, admin = setup
    plain = await client.post("/api/v1/api-keys", headers=bearer(admin), json={"name": "no scope"})
    response = await client.post(
        "/api/v1/login-events",
        headers={"X-API-KEY": plain.json()["api_key"]},
        json=event("gus", NY, T0),
    )
    assert response.status_code == 403
    assert (await client.post("/api/v1/login-events", json=event("gus", NY, T0))).status_code == 401


async def test_single_bad_event_is_400(setup):
    client, headers, _ = setup
    response = await client.post(
        "/api/v1/login-events", headers=headers, json={"subject": "h", "ip": NY}
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_event"


async def _chunks(parts):
    for part in parts:
        yield part


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([b'{"a":1}\n{"b"', b":2}\n"], [(1, b'{"a":1}'), (2, b'{"b":2}')]),
        ([b"\n\n{}\n", b"  \n{}"], [(3, b"{}"), (5, b"{}")]),
        ([b"x" * 70_000, b"\n{}\n"], [(1, None), (2, b"{}")]),
        ([b"{}\r\n"], [(1, b"{}\r")]),
    ],
)
async def test_line_splitting(parts, expected):
    assert [item async for item in lines(_chunks(parts))] == expected
