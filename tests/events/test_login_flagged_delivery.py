"""A SIEM subscribed to webhooks hears every flagged login: one graded impossible through the
Superman API (`POST /v1/`) and one of Globeguard's own sign-ins reach it as `login.flagged`
with both places named; a subscription without personal data gets the verdict and the
numbers but neither the places, the subject nor the address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from globeguard.app import create_app
from globeguard.identity.auth import service as auth_service
from tests.conftest import make_settings, wipe
from tests.events.support import FakeClock, Receiver, dispatcher, subscribe
from tests.helpers import STRONG, bearer, make_admin
from tests.support.mmdb import city_record, write_city_db

WASHINGTON, ZHENGZHOU, LONDON = "206.81.252.200", "42.222.21.19", "81.2.69.160"
T0 = int((datetime.now(UTC) - timedelta(days=3)).timestamp())


@pytest.fixture
async def siem(database_url, tmp_path):
    db_file = write_city_db(
        tmp_path / "city.mmdb",
        {
            WASHINGTON: city_record(
                38.9206,
                -76.8787,
                radius=20,
                country="US",
                subdivision=("MD", "Maryland", 4361885),
                city=("Landover", 4360287),
            ),
            ZHENGZHOU: city_record(
                34.7725,
                113.7266,
                radius=50,
                country="CN",
                subdivision=("HA", "Henan", 1808520),
                city=("Zhengzhou", 1784658),
            ),
            LONDON: city_record(
                51.5074,
                -0.1278,
                radius=5,
                country="GB",
                subdivision=("ENG", "England", 6269131),
                city=("London", 2643743),
            ),
        },
    )
    settings = make_settings(
        database_url,
        tmp_path,
        geoip={"city_db": db_file},
        travel={"learning_logins": 0},
        http={"trusted_proxies": ["127.0.0.0/8"]},
        delivery={"embedded": False, "allow_private_targets": True, "stream_settle": "PT0S"},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        container = app.state.container
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admin = bearer(await make_admin(client, container))
            key = await client.post(
                "/api/v1/api-keys",
                headers=admin,
                json={"name": "superman", "scopes": ["login_events:write"]},
            )
            await subscribe(container, "pii", include_pii=True, event_types=["login.*"])
            await subscribe(container, "plain", event_types=["login.*"])
            try:
                yield client, {"X-API-KEY": key.json()["api_key"]}, admin, container
            finally:
                await wipe(container)


async def delivered(container) -> dict[str, list[dict]]:
    """What each subscription received, by its name, as the envelopes' JSON."""
    receiver = Receiver()
    await dispatcher(container, receiver, FakeClock()).drain()
    return {
        name: [orjson.loads(r.body) for r in receiver.to(f"{name}.test")]
        for name in ("pii", "plain")
    }


async def test_a_superman_impossible_login_reaches_the_siem_with_both_places(siem):
    client, key, _, container = siem
    steps = [(WASHINGTON, T0, "w-1"), (ZHENGZHOU, T0 + 4400, "z-1")]
    for ip, at, uuid_ in steps:
        body = {"username": "bob", "unix_timestamp": at, "event_uuid": uuid_, "ip_address": ip}
        response = await client.post("/v1/", json=body, headers=key)
        assert response.status_code == 200, response.text
    assert response.json()["travelToCurrentGeoSuspicious"] is True
    got = await delivered(container)
    (full,) = got["pii"]
    assert full["type"] == "login.flagged" and full["subject"] == "login/z-1"
    data = full["data"]
    assert (data["source"], data["subject"], data["ip"]) == ("superman", "bob", ZHENGZHOU)
    assert (data["verdict"], data["cause"]) == ("impossible", "arrival")
    origin, destination = data["journey"]["origin"], data["journey"]["destination"]
    assert (origin["city_name"], origin["subdivision_iso"], origin["country_iso"]) == (
        "Landover",
        "MD",
        "US",
    )
    assert (origin["city_geoname_id"], origin["country_geoname_id"]) == (4360287, 6252001)
    assert (origin["lat"], origin["lon"], origin["accuracy_radius_km"]) == (38.9206, -76.8787, 20)
    assert (destination["city_name"], destination["subdivision_geoname_id"]) == (
        "Zhengzhou",
        1808520,
    )
    assert (destination["country_iso"], destination["accuracy_radius_km"]) == ("CN", 50)
    travel = data["travel"]
    assert 11_000 < travel["distance_km"] < 12_500
    assert travel["adjusted_distance_km"] == pytest.approx(travel["distance_km"] - 70)
    assert travel["elapsed_seconds"] == 4400
    assert travel["speed_mph"] > 5000 and travel["speed_kmh"] > 8000
    (plain,) = got["plain"]
    assert plain["id"] == full["id"]
    assert {"journey", "subject", "ip"}.isdisjoint(plain["data"])
    assert plain["data"]["travel"] == travel and plain["data"]["verdict"] == "impossible"


async def test_an_own_sign_in_is_heard_as_before_and_as_login_flagged(siem, monkeypatch):
    client, _, admin, container = siem
    now = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr(auth_service, "utcnow", lambda: now)
    user = await client.post("/api/v1/auth/signup", json={"username": "rita", "password": STRONG})
    assert user.status_code == 201, user.text
    user_id = user.json()["user_id"]
    for ip in (WASHINGTON, LONDON):
        answer = await client.post(
            "/api/v1/auth/signin",
            json={"username": "rita", "password": STRONG},
            headers={"X-Forwarded-For": ip},
        )
        assert answer.status_code == 200, answer.text
        now += timedelta(minutes=10)
    received = Receiver()
    await dispatcher(container, received, FakeClock()).drain()
    audit = await client.get(
        "/api/v1/audit",
        headers=admin,
        params={"type": ["user.signin.suspicious", "login.flagged"], "user_id": user_id},
    )
    types = sorted(item["type"] for item in audit.json()["items"])
    assert types == ["login.flagged", "user.signin.suspicious"]
    flagged = [orjson.loads(r.body) for r in received.to("pii.test")]
    (event,) = [e for e in flagged if e["type"] == "login.flagged"]
    data = event["data"]
    assert (data["user_id"], data["source"], data["subject"]) == (user_id, "globeguard", user_id)
    assert data["journey"]["origin"]["city_name"] == "Landover"
    assert data["journey"]["destination"]["city_name"] == "London"
