"""`GET /api/v1/logins/flagged`: the newest suspicious and impossible logins, each with the
journey that earned its grade, both ends named, for holders of `users:read`."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from globeguard.app import create_app
from globeguard.travel.models import LoginEvent
from tests.conftest import make_settings, wipe
from tests.helpers import STRONG, bearer, make_admin, signin, signup
from tests.support.mmdb import city_record, write_city_db

PARIS, SYDNEY, NEW_YORK = "203.4.4.4", "203.6.6.6", "203.1.1.1"
PLACES = {
    PARIS: (48.8566, 2.3522, "FR", ("IDF", "Ile-de-France", 3012874), ("Paris", 2988507)),
    SYDNEY: (-33.8688, 151.2093, "AU", ("NSW", "New South Wales", 2155400), ("Sydney", 2147714)),
    NEW_YORK: (40.7128, -74.0060, "US", ("NY", "New York", 5128638), ("New York", 5128581)),
}  # fmt: skip
PROXY = "203.0.113.7"
T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)


@pytest.fixture
async def setup(database_url, tmp_path):
    records = {
        ip: city_record(lat, lon, radius=5, country=cc, subdivision=sub, city=city)
        for ip, (lat, lon, cc, sub, city) in PLACES.items()
    }
    settings = make_settings(
        database_url,
        tmp_path,
        geoip={"city_db": write_city_db(tmp_path / "city.mmdb", records)},
        travel={"learning_logins": 0},
        http={"trusted_proxies": [f"{PROXY}/32"]},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(PROXY, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            container = app.state.container
            admin = await make_admin(client, container)
            key = await client.post(
                "/api/v1/api-keys",
                headers=bearer(admin),
                json={"name": "idp", "scopes": ["login_events:write"]},
            )
            try:
                yield client, container, admin, {"X-API-KEY": key.json()["api_key"]}
            finally:
                await wipe(container)


async def report(client, headers, subject: str, ip: str, seconds: int, uuid: str) -> str:
    at = T0.timestamp() + seconds
    body = {"subject": subject, "ip": ip, "occurred_at": at, "event_uuid": uuid}
    response = await client.post("/api/v1/login-events", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["verdict"])


async def flagged(client, admin, **params) -> dict:
    response = await client.get("/api/v1/logins/flagged", params=params, headers=bearer(admin))
    assert response.status_code == 200, response.text
    return response.json()


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2
    h += math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def place(ip: str) -> tuple[str, str, str]:
    _, _, country, (region, _, _), (city, _) = PLACES[ip]
    return city, region, country


async def test_a_flagged_login_names_both_places_and_measures_the_journey(setup):
    client, _, admin, headers = setup
    assert await report(client, headers, "ext@idp", PARIS, 0, "paris-1") == "none"
    assert await report(client, headers, "ext@idp", SYDNEY, 3600, "sydney-1") == "impossible"

    (item,) = (await flagged(client, admin))["items"]
    assert (item["event_uuid"], item["subject"], item["verdict"]) == (
        "sydney-1",
        "ext@idp",
        "impossible",
    )
    assert (item["user_id"], item["username"], item["review"]) == (None, None, None)
    assert item["source"] and item["success"] is True
    origin, destination = item["origin"], item["destination"]
    assert origin["event_uuid"] == "paris-1" and destination["event_uuid"] == "sydney-1"
    assert (origin["city_name"], origin["subdivision_iso"], origin["country_iso"]) == place(PARIS)
    assert (
        destination["city_name"],
        destination["subdivision_iso"],
        destination["country_iso"],
    ) == place(SYDNEY)
    km = haversine_km(PLACES[PARIS][:2], PLACES[SYDNEY][:2])
    assert item["distance_km"] == pytest.approx(km, rel=1e-6)
    assert item["elapsed_seconds"] == pytest.approx(3600)
    assert item["speed_kmh"] == pytest.approx(km, rel=1e-6)  # in one hour
    assert item["speed_mph"] == pytest.approx(km / 1.609344, rel=1e-6)


async def test_newest_first_paged_by_id_plausible_logins_left_out(setup):
    client, _, admin, headers = setup
    await report(client, headers, "a@idp", PARIS, 0, "a1")
    await report(client, headers, "a@idp", SYDNEY, 600, "a2")  # impossible
    await report(client, headers, "b@idp", NEW_YORK, 0, "b1")
    await report(client, headers, "b@idp", NEW_YORK, 60, "b2")  # same place: plausible
    await report(client, headers, "b@idp", PARIS, 1200, "b3")  # impossible

    assert [i["event_uuid"] for i in (await flagged(client, admin))["items"]] == ["b3", "a2"]
    first = await flagged(client, admin, limit=1)
    assert [i["event_uuid"] for i in first["items"]] == ["b3"]
    second = await flagged(client, admin, limit=1, before=first["next_before"])
    assert [i["event_uuid"] for i in second["items"]] == ["a2"]
    third = await flagged(client, admin, limit=1, before=second["next_before"])
    assert third == {"items": [], "next_before": None}


async def test_a_users_own_sign_in_carries_the_username_and_a_review_shows(setup):
    client, container, admin, _ = setup
    await signup(client, "alice")
    for ip in (PARIS, SYDNEY):  # seconds apart, half the world away
        response = await client.post(
            "/api/v1/auth/signin",
            json={"username": "alice", "password": STRONG},
            headers={"X-Forwarded-For": ip},
        )
        assert response.status_code in (200, 403), response.text
    (item,) = (await flagged(client, admin))["items"]
    assert item["username"] == "alice" and item["user_id"] is not None
    assert item["destination"]["city_name"] == "Sydney"
    assert item["origin"]["city_name"] == "Paris"

    reviewed = datetime(2026, 6, 2, tzinfo=UTC)
    async with container.db.transaction() as session:
        await session.execute(
            update(LoginEvent)
            .where(LoginEvent.id == item["id"])
            .values(review="safe", reviewed_at=reviewed)
        )
    (item,) = (await flagged(client, admin))["items"]
    assert item["review"] == "safe"
    assert datetime.fromisoformat(item["reviewed_at"]) == reviewed


async def test_only_holders_of_users_read(setup):
    client, _, _, _ = setup
    await signup(client, "bob")
    bob = await signin(client, "bob")
    assert (await client.get("/api/v1/logins/flagged")).status_code == 401
    refused = await client.get("/api/v1/logins/flagged", headers=bearer(bob))
    assert refused.status_code == 403


@pytest.mark.parametrize("params", [{"before": 0}, {"limit": 0}, {"limit": "x"}])
async def test_bad_paging_is_refused(setup, params):
    client, _, admin, _ = setup
    response = await client.get("/api/v1/logins/flagged", params=params, headers=bearer(admin))
    assert response.status_code == 422
