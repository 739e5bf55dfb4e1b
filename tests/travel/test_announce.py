"""Every verdict is heard: `login.flagged` / `login.cleared` in the outbox for reported logins
(one event and NDJSON), for re-grades by a late arrival, and for reviews, in the transaction
that stores the verdict; and the verdict counters on /metrics."""

from __future__ import annotations

import pickle
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from globeguard.app import create_app
from globeguard.travel.announce import VerdictAnnouncer, announce_review
from globeguard.travel.ingest import IncomingEvent, IngestReport
from globeguard.travel.repository import LoginEventRepository
from tests.conftest import make_settings, wipe
from tests.helpers import bearer, make_admin
from tests.support.mmdb import city_record, write_city_db

NY, LONDON, SYDNEY = "203.1.1.1", "203.2.2.2", "203.3.3.3"
# Recent enough that retention keeps every event.
T0 = int((datetime.now(UTC) - timedelta(days=10)).timestamp())
HOUR = 3600


@pytest.fixture
async def setup(database_url, tmp_path):
    db_file = write_city_db(
        tmp_path / "city.mmdb",
        {
            NY: city_record(
                40.7128,
                -74.0060,
                radius=5,
                country="US",
                subdivision=("NY", "New York", 5128638),
                city=("New York", 5128581),
            ),
            LONDON: city_record(
                51.5074,
                -0.1278,
                radius=5,
                country="GB",
                subdivision=("ENG", "England", 6269131),
                city=("London", 2643743),
            ),
            SYDNEY: city_record(
                -33.8688,
                151.2093,
                radius=5,
                country="AU",
                subdivision=("NSW", "New South Wales", 2155400),
                city=("Sydney", 2147714),
            ),
        },
    )
    settings = make_settings(
        database_url,
        tmp_path,
        geoip={"city_db": db_file},
        travel={"learning_logins": 0},
        # The event stream shows events at once (PostgreSQL holds fresh ones back a moment).
        delivery={"stream_settle": "PT0S"},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            container = app.state.container
            admin = bearer(await make_admin(client, container))
            key = await client.post(
                "/api/v1/api-keys",
                headers=admin,
                json={"name": "idp", "scopes": ["login_events:write"]},
            )
            headers = {"X-API-KEY": key.json()["api_key"]}
            try:
                yield client, headers, admin, container
            finally:
                await wipe(container)


def event(subject, ip, t, **extra):
    return {"subject": subject, "ip": ip, "occurred_at": t, **extra}


async def post_one(client, headers, body) -> dict:
    response = await client.post("/api/v1/login-events", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def post_stream(client, headers, *events) -> dict:
    body = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    response = await client.post(
        "/api/v1/login-events",
        content=body,
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def announced(client, admin, *types: str) -> list[dict]:
    """The outbox's login events, oldest first, as the audit trail shows them."""
    types = types or ("login.flagged", "login.cleared")
    response = await client.get(
        "/api/v1/audit", headers=admin, params={"type": list(types), "limit": 1000}
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_reported_impossible_login_is_announced_with_its_journey(setup):
    client, headers, admin, _ = setup
    await post_one(client, headers, event("dana@example.test", NY, T0, event_uuid="d1"))
    assert await announced(client, admin) == []  # a first login is not flagged
    graded = await post_one(
        client, headers, event("dana@example.test", LONDON, T0 + 600, event_uuid="d2")
    )
    assert graded["verdict"] == "impossible"
    (flagged,) = await announced(client, admin)
    assert flagged["type"] == "login.flagged"
    assert flagged["aggregate_type"] == "login" and flagged["aggregate_id"] == "d2"
    assert flagged["actor"] == "system:travel" and flagged["user_id"] is None
    data = flagged["payload"]
    assert isinstance(data["login_id"], int)
    assert (data["subject"], data["source"], data["ip"]) == ("dana@example.test", "api", LONDON)
    assert (data["verdict"], data["previous_verdict"], data["cause"]) == (
        "impossible",
        None,
        "arrival",
    )
    origin, destination = data["journey"]["origin"], data["journey"]["destination"]
    assert origin["event_uuid"] == "d1" and destination["event_uuid"] == "d2"
    assert (origin["city_name"], origin["city_geoname_id"]) == ("New York", 5128581)
    assert (origin["subdivision_iso"], origin["subdivision_geoname_id"]) == ("NY", 5128638)
    assert (origin["country_iso"], origin["country_geoname_id"]) == ("US", 6252001)
    assert (origin["lat"], origin["lon"], origin["accuracy_radius_km"]) == (
        40.7128,
        -74.0060,
        5,
    )
    assert (destination["city_name"], destination["country_iso"]) == ("London", "GB")
    assert destination["subdivision_iso"] == "ENG"
    travel = data["travel"]
    assert travel["origin_event_uuid"] == "d1"
    assert 5500 < travel["distance_km"] < 5650
    assert travel["adjusted_distance_km"] == pytest.approx(travel["distance_km"] - 10)
    assert travel["elapsed_seconds"] == 600
    assert travel["speed_mph"] > 20_000
    assert travel["speed_kmh"] == pytest.approx(travel["speed_mph"] * 1.609344)
    assert travel["adjusted_speed_kmh"] == pytest.approx(travel["adjusted_speed_mph"] * 1.609344)
    assert travel["threshold_mph"] == 500.0
    assert travel["threshold_kmh"] == pytest.approx(804.672)
    assert (travel["raw_grade"], travel["lowered_by"]) == ("impossible", None)


async def test_a_stream_announces_each_flagged_login_once_and_no_plausible_one(setup):
    client, headers, admin, _ = setup
    report = await post_stream(
        client,
        headers,
        event("erin", NY, T0, event_uuid="e1"),
        event("erin", NY, T0 + HOUR, event_uuid="e2"),  # same place: plausible
        event("erin", LONDON, T0 + 2 * HOUR, event_uuid="e3"),  # impossible
        event("erin", LONDON, T0 + 30 * HOUR, event_uuid="e4"),  # same place again
        event("finn", SYDNEY, T0 + 3 * HOUR, event_uuid="f1"),
        event("finn", NY, T0 + 4 * HOUR, event_uuid="f2"),  # impossible
        event("gus", SYDNEY, T0, event_uuid="g1"),
        event("gus", LONDON, T0 + 40 * HOUR, event_uuid="g2"),  # a day and a half: plausible
    )
    assert report["accepted"] == 8
    events = await announced(client, admin)
    assert sorted(e["aggregate_id"] for e in events) == ["e3", "f2"]
    assert {e["type"] for e in events} == {"login.flagged"}
    by_login = {e["aggregate_id"]: e["payload"] for e in events}
    # The bulk path does not read ids back; the announcement does.
    assert all(isinstance(p["login_id"], int) for p in by_login.values())
    # An anchor from the same batch is named as fully as a stored one.
    assert by_login["f2"]["journey"]["origin"]["city_name"] == "Sydney"
    assert by_login["f2"]["journey"]["origin"]["country_geoname_id"] == 2077456
    assert by_login["e3"]["journey"]["origin"]["event_uuid"] == "e2"


async def test_a_late_arrival_flags_a_stored_login(setup):
    """NY, then Sydney 30 h later: plausible. A success in London 5 h before Sydney, arriving
    late, becomes Sydney's anchor: London → Sydney in 5 h is impossible."""
    client, headers, admin, _ = setup
    await post_one(client, headers, event("hana", NY, T0, event_uuid="h1"))
    sydney = await post_one(client, headers, event("hana", SYDNEY, T0 + 30 * HOUR, event_uuid="h2"))
    assert sydney["verdict"] == "plausible"
    assert await announced(client, admin) == []
    await post_one(client, headers, event("hana", LONDON, T0 + 25 * HOUR, event_uuid="h3"))
    (flagged,) = await announced(client, admin)
    assert flagged["type"] == "login.flagged" and flagged["aggregate_id"] == "h2"
    data = flagged["payload"]
    assert (data["cause"], data["previous_verdict"], data["verdict"]) == (
        "regrade",
        "plausible",
        "impossible",
    )
    assert data["journey"]["origin"]["city_name"] == "London"
    assert data["journey"]["destination"]["city_name"] == "Sydney"
    assert data["travel"]["elapsed_seconds"] == 5 * HOUR


@pytest.mark.parametrize("stream", [False, True])
async def test_a_late_arrival_clears_a_flagged_login(setup, stream):
    """NY, then London an hour later: impossible. A success in London two days earlier,
    arriving late, makes London a known place: the flag is lowered."""
    client, headers, admin, _ = setup
    await post_one(client, headers, event("ida", NY, T0, event_uuid="i1"))
    london = await post_one(client, headers, event("ida", LONDON, T0 + HOUR, event_uuid="i2"))
    assert london["verdict"] == "impossible"
    late = event("ida", LONDON, T0 - 48 * HOUR, event_uuid="i0")
    if stream:
        await post_stream(client, headers, late)
    else:
        await post_one(client, headers, late)
    flagged, cleared = await announced(client, admin)
    assert flagged["payload"]["cause"] == "arrival"
    assert cleared["type"] == "login.cleared" and cleared["aggregate_id"] == "i2"
    data = cleared["payload"]
    assert (data["cause"], data["previous_verdict"], data["verdict"]) == (
        "regrade",
        "impossible",
        "plausible",
    )
    assert data["travel"]["lowered_by"] == "known_location"


async def test_a_rolled_back_batch_announces_nothing(setup):
    client, _, admin, container = setup
    batch = [
        (1, IncomingEvent.model_validate(event("jo", NY, T0, event_uuid="j1"))),
        (2, IncomingEvent.model_validate(event("jo", SYDNEY, T0 + 60, event_uuid="j2"))),
    ]

    async def store_then_fail() -> None:
        async with container.db.transaction() as session:
            await container.ingestor.store(session, batch, "import", IngestReport())
            raise RuntimeError("the caller failed after storing")

    with pytest.raises(RuntimeError):
        await store_then_fail()
    assert await announced(client, admin) == []
    text = (await client.get("/metrics", headers=admin)).text
    assert 'source="import"' not in text
    # The same batch committed is announced and counted.
    async with container.db.transaction() as session:
        await container.ingestor.store(session, batch, "import", IngestReport())
    assert [e["aggregate_id"] for e in await announced(client, admin)] == ["j2"]
    text = (await client.get("/metrics", headers=admin)).text
    assert (
        _sample(text, "globeguard_login_verdicts_total", verdict="impossible", source="import") == 1
    )


async def test_the_counters_count_every_graded_login_by_verdict_and_source(setup):
    client, headers, admin, _ = setup
    await post_stream(
        client,
        headers,
        event("kim", NY, T0),
        event("kim", NY, T0 + HOUR),
        event("kim", SYDNEY, T0 + 2 * HOUR),
    )
    await post_one(client, headers, event("lou", NY, T0))
    await post_one(client, headers, event("lou", LONDON, T0 + 60 * HOUR, event_uuid="l2"))
    await post_one(client, headers, event("lou", SYDNEY, T0 + 50 * HOUR))  # re-grades l2
    text = (await client.get("/metrics", headers=admin)).text
    assert _sample(text, "globeguard_login_verdicts_total", verdict="none", source="api") == 2
    assert _sample(text, "globeguard_login_verdicts_total", verdict="plausible", source="api") == 3
    assert _sample(text, "globeguard_login_verdicts_total", verdict="impossible", source="api") == 1
    assert (
        _sample(
            text,
            "globeguard_login_regrades_total",
            verdict="impossible",
            previous_verdict="plausible",
            source="api",
        )
        == 1
    )


async def test_a_review_announces_the_login_cleared(setup):
    client, headers, admin, container = setup
    await post_one(client, headers, event("max", NY, T0, event_uuid="m1"))
    await post_one(client, headers, event("max", SYDNEY, T0 + HOUR, event_uuid="m2"))
    (flagged,) = await announced(client, admin)
    async with container.db.transaction() as session:
        row = await LoginEventRepository(session).by_uuid("m2")
        assert row is not None
        event_id = await announce_review(session, row, "cleared", actor="user:admin")
    _, cleared = await announced(client, admin)
    assert cleared["type"] == "login.cleared" and cleared["actor"] == "user:admin"
    data = cleared["payload"]
    assert (data["cause"], data["review"], data["verdict"]) == ("review", "safe", "impossible")
    assert data["journey"] == flagged["payload"]["journey"]
    stream = await client.get("/api/v1/events", headers=admin, params={"type": "login.*"})
    assert event_id in [e["id"] for e in stream.json()["items"]]


async def test_demo_data_graded_elsewhere_is_announced_when_written(setup):
    """The demo seeder's path: graded and summarised without a database (in another process),
    then written; the announcement is written with the rows, and counted."""
    client, _, admin, container = setup
    batch = [
        (1, IncomingEvent.model_validate(event("nia", NY, T0, event_uuid="n1"))),
        (2, IncomingEvent.model_validate(event("nia", LONDON, T0 + 60, event_uuid="n2"))),
        (3, IncomingEvent.model_validate(event("ola", SYDNEY, T0, event_uuid="o1"))),
    ]
    prepared = container.ingestor.prepare_new(batch, "demo", {})
    prepared = pickle.loads(pickle.dumps(prepared))  # noqa: S301 - as the producer sends it
    async with container.db.transaction() as session:
        await container.ingestor.store_prepared(session, prepared, IngestReport())
    (flagged,) = await announced(client, admin)
    data = flagged["payload"]
    assert flagged["aggregate_id"] == "n2" and isinstance(data["login_id"], int)
    assert (data["source"], data["verdict"], data["cause"]) == ("demo", "impossible", "arrival")
    assert data["journey"]["origin"]["city_name"] == "New York"
    text = (await client.get("/metrics", headers=admin)).text
    assert _sample(text, "globeguard_login_verdicts_total", verdict="none", source="demo") == 2


def test_the_announcer_travels_to_the_demo_producer_and_summarises_there():
    announcer = pickle.loads(pickle.dumps(VerdictAnnouncer()))  # noqa: S301 - our own bytes
    at = datetime.fromtimestamp(T0, UTC)
    anchor = {"event_uuid": "a", "subject": "s", "source": "demo", "occurred_at": at}
    rows = [
        {**anchor, "verdict": "none", "verdict_reasons": None, "city_name": "Paris"},
        {
            **anchor,
            "event_uuid": "b",
            "success": True,
            "user_id": uuid.uuid4(),
            "verdict": "impossible",
            "verdict_reasons": {"earlier": "a", "raw_grade": "impossible"},
            "city_name": "Tokyo",
        },
    ]
    summary = pickle.loads(pickle.dumps(announcer.summarise(rows, {})))  # noqa: S301
    (payload,) = summary.payloads
    assert payload["journey"]["origin"]["city_name"] == "Paris"
    assert payload["journey"]["destination"]["city_name"] == "Tokyo"
    assert dict(summary.counts) == {("none", "demo"): 1, ("impossible", "demo"): 1}


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and sorted(match.group(1).split(",")) == sorted(wanted.split(",")):
            return float(match.group(2))
    return 0.0
