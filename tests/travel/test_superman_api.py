"""`POST /v1/` replays the Superman seed README byte-for-value, on both databases."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from globeguard.app import create_app
from tests.conftest import make_settings, wipe
from tests.support.mmdb import write_superman_seed_db

README_STEPS = [
    (
        {
            "username": "bob",
            "unix_timestamp": 1514764800,
            "event_uuid": "85ad929a-db03-4bf4-9541-8f728fa12e42",
            "ip_address": "206.81.252.200",
        },
        {
            "currentGeo": {"lat": 38.9206, "lon": -76.8787, "radius": 1000},
            "travelToCurrentGeoSuspicious": False,
            "travelFromCurrentGeoSuspicious": False,
        },
    ),
    (
        {
            "username": "bob",
            "unix_timestamp": 1514769200,
            "event_uuid": "8ae38b0c-a8bf-11ea-bb37-0242ac130002",
            "ip_address": "42.222.21.19",
        },
        {
            "currentGeo": {"lat": 34.7725, "lon": 113.7266, "radius": 50},
            "travelToCurrentGeoSuspicious": True,
            "travelFromCurrentGeoSuspicious": False,
            "precedingIpAccess": {
                "lat": 38.9206,
                "lon": -76.8787,
                "radius": 1000,
                "ip": "206.81.252.200",
                "speed": 5971,
                "timestamp": 1514764800,
            },
        },
    ),
    (
        {
            "username": "bob",
            "unix_timestamp": 1514763200,
            "event_uuid": "a547a38c-d23e-4990-be23-81cf212102b3",
            "ip_address": "206.81.252.7",
        },
        {
            "currentGeo": {"lat": 38.9206, "lon": -76.8787, "radius": 1000},
            "travelToCurrentGeoSuspicious": False,
            "travelFromCurrentGeoSuspicious": False,
            "subsequentIpAccess": {
                "lat": 38.9206,
                "lon": -76.8787,
                "radius": 1000,
                "ip": "206.81.252.200",
                "speed": 0,
                "timestamp": 1514764800,
            },
        },
    ),
    (
        {
            "username": "bob",
            "unix_timestamp": 1514764800,
            "event_uuid": "85ad929a-db03-4bf4-9541-8f728fa12e42",
            "ip_address": "206.81.252.200",
        },
        {
            "currentGeo": {"lat": 38.9206, "lon": -76.8787, "radius": 1000},
            "travelToCurrentGeoSuspicious": False,
            "travelFromCurrentGeoSuspicious": True,
            "precedingIpAccess": {
                "lat": 38.9206,
                "lon": -76.8787,
                "radius": 1000,
                "ip": "206.81.252.7",
                "speed": 0,
                "timestamp": 1514763200,
            },
            "subsequentIpAccess": {
                "lat": 34.7725,
                "lon": 113.7266,
                "radius": 50,
                "ip": "42.222.21.19",
                "speed": 5971,
                "timestamp": 1514769200,
            },
        },
    ),
]
FIFTH = {
    "username": "bob",
    "unix_timestamp": 1514764800,
    "event_uuid": "85ad929a-db03-4bf4-9541-8f728fa12e42",
    "ip_address": "206.81.252.432",
}


@pytest.fixture
async def seed_client(database_url, tmp_path):
    """An open /v1/ (as the seed had it) over a GeoIP database holding the README's places."""
    db_file = write_superman_seed_db(tmp_path / "seed-city.mmdb")
    settings = make_settings(
        database_url, tmp_path, geoip={"city_db": db_file}, travel={"superman_open": True}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            try:
                yield client
            finally:
                await wipe(app.state.container)


async def test_the_readme_replay(seed_client):
    for number, (request, expected) in enumerate(README_STEPS, start=1):
        response = await seed_client.post("/v1/", json=request)
        assert response.status_code == 200, (number, response.text)
        assert response.json() == expected, f"step {number}"
    fifth = await seed_client.post("/v1/", json=FIFTH)
    assert fifth.status_code == 400
    assert fifth.json()["code"] == "invalid_ip"


async def test_same_uuid_with_another_body_is_409_and_stores_nothing(seed_client):
    first, _ = README_STEPS[0]
    assert (await seed_client.post("/v1/", json=first)).status_code == 200
    clash = await seed_client.post("/v1/", json={**first, "ip_address": "42.222.21.19"})
    assert clash.status_code == 409 and clash.json()["code"] == "event_uuid_conflict"
    # nothing stored: a later event still sees the first one as its only neighbour
    later = await seed_client.post("/v1/", json={**README_STEPS[1][0]})
    assert later.json()["precedingIpAccess"]["ip"] == "206.81.252.200"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"unix_timestamp": "1514764800"}, "invalid_event"),
        ({"unix_timestamp": 1514764800.5}, "invalid_event"),
        ({"unix_timestamp": 0}, "invalid_event"),
        ({"unix_timestamp": -5}, "invalid_event"),
        ({"unix_timestamp": 1514764800000}, "invalid_event"),  # milliseconds
        ({"username": ""}, "invalid_event"),
        ({"event_uuid": ""}, "invalid_event"),
        ({"ip_address": ""}, "invalid_event"),
        ({"ip_address": "1.2.3.0/24"}, "invalid_ip"),
        ({"ip_address": "01.2.3.4"}, "invalid_ip"),
        ({"username": None}, "invalid_event"),
    ],
)
async def test_malformed_events_are_400_and_store_nothing(seed_client, change, code):
    request = {**README_STEPS[0][0], **change}
    response = await seed_client.post("/v1/", json=request)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    ok = await seed_client.post("/v1/", json=README_STEPS[0][0])
    assert "precedingIpAccess" not in ok.json()  # the bad one left no trace


@pytest.mark.parametrize("body", [b"{not json", b"[1,2]", b"", b'"bob"'])
async def test_malformed_json_is_400(seed_client, body):
    response = await seed_client.post(
        "/v1/", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


async def test_the_app_wide_input_guard_still_runs(seed_client):
    """The route skips FastAPI's dependency solving (kit.lean_route): the guard every other
    route gets as an app-wide dependency runs there instead, before anything is stored."""
    response = await seed_client.post("/v1/", params={"note": "a\x00b"}, json=README_STEPS[0][0])
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "note"]
    ok = await seed_client.post("/v1/", json=README_STEPS[0][0])
    assert "precedingIpAccess" not in ok.json()  # the refused one left no trace


@pytest.mark.parametrize("ip", ["10.0.0.1", "127.0.0.1", "192.0.2.1", "8.8.4.4"])
async def test_unlocatable_addresses_are_422(seed_client, ip):
    request = {**README_STEPS[0][0], "ip_address": ip}
    response = await seed_client.post("/v1/", json=request)
    assert response.status_code == 422 and response.json()["code"] == "ip_not_locatable"


async def test_concurrent_posts_for_one_subject_see_each_other(seed_client):
    """Ten events for one user posted at once: afterwards each one's neighbours are exactly
    its time-order neighbours, so no post missed another."""
    ips = ["206.81.252.200", "42.222.21.19"]
    events = [
        {
            "username": "carol",
            "unix_timestamp": 1_600_000_000 + 3600 * i,
            "event_uuid": f"c-{i}",
            "ip_address": ips[i % 2],
        }
        for i in range(10)
    ]
    responses = await asyncio.gather(*(seed_client.post("/v1/", json=e) for e in events))
    assert all(r.status_code == 200 for r in responses)
    for i, event in enumerate(events):
        again = (await seed_client.post("/v1/", json=event)).json()
        before = again.get("precedingIpAccess", {}).get("timestamp")
        after = again.get("subsequentIpAccess", {}).get("timestamp")
        assert before == (events[i - 1]["unix_timestamp"] if i > 0 else None)
        assert after == (events[i + 1]["unix_timestamp"] if i < 9 else None)


async def test_closed_by_default_and_needs_the_scope(client):
    response = await client.post("/v1/", json=README_STEPS[0][0])
    assert response.status_code == 401
