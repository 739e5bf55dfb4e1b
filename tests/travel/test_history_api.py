"""`GET /api/v1/users/{id}/logins` (a user's sign-ins, newest first, keyset-paged) and
`GET /api/v1/geo/{ip}` (one lookup in the bundled GeoLite2-City), on both databases."""

from __future__ import annotations

import uuid

import pytest

from globeguard.travel.repository import LoginEventRepository
from tests.helpers import STRONG, bearer, make_admin, signin, signup


async def _logins(client, user_id, headers, **params):
    return await client.get(f"/api/v1/users/{user_id}/logins", headers=headers, params=params)


async def _signed_in_times(client, username: str, times: int) -> dict:
    tokens = await signup(client, username)
    for _ in range(times):
        tokens = await signin(client, username)
    return tokens


# --- login history -----------------------------------------------------------------------


async def test_pages_newest_first_until_next_before_is_null(client):
    tokens = await _signed_in_times(client, "pager", 5)
    user_id, headers = tokens["user_id"], bearer(tokens)
    everything = (await _logins(client, user_id, headers)).json()
    assert everything["next_before"] is None
    ids = [item["id"] for item in everything["items"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)

    seen, before, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"before": before} if before is not None else {})
        page = (await _logins(client, user_id, headers, **params)).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        if page["next_before"] is None:
            break
        assert page["next_before"] == page["items"][-1]["id"]
        before = page["next_before"]
    assert seen == ids and pages == 3  # 2 + 2 + 1


async def test_a_full_last_page_is_followed_by_an_empty_one(client):
    tokens = await _signed_in_times(client, "evenpager", 4)
    user_id, headers = tokens["user_id"], bearer(tokens)
    first = (await _logins(client, user_id, headers, limit=2)).json()
    second = (await _logins(client, user_id, headers, limit=2, before=first["next_before"])).json()
    assert len(second["items"]) == 2 and second["next_before"] is not None
    third = (await _logins(client, user_id, headers, limit=2, before=second["next_before"])).json()
    assert third == {"items": [], "next_before": None}


async def test_an_event_has_every_documented_field(client):
    tokens = await _signed_in_times(client, "fields", 1)
    response = await client.post(
        "/api/v1/auth/signin",
        json={"username": "fields", "password": "wrong-password"},
        headers={"User-Agent": "pytest-agent/1"},
    )
    assert response.status_code == 401
    items = (await _logins(client, tokens["user_id"], bearer(tokens))).json()["items"]
    failed, succeeded = items
    assert set(failed) == {
        "id",
        "event_uuid",
        "occurred_at",
        "success",
        "failure_reason",
        "ip",
        "user_agent",
        "source",
        "place",
        "geo_reason",
        "verdict",
        "verdict_reasons",
        "review",
        "reviewed_at",
    }
    assert (failed["review"], failed["reviewed_at"]) == (None, None)
    assert (failed["success"], failed["failure_reason"]) == (False, "invalid_credentials")
    assert failed["user_agent"] == "pytest-agent/1" and failed["source"] == "globeguard"
    assert succeeded["success"] is True and succeeded["failure_reason"] is None
    # The test client's peer is 203.0.113.7, documentation space: never given a place.
    assert failed["ip"] == "203.0.113.7"
    assert failed["place"] is None and failed["geo_reason"] == "reserved"
    assert succeeded["verdict"] == "none"
    assert failed["verdict"] == "unverifiable"
    assert failed["verdict_reasons"]  # the unmeasurable journey from the sign-in before


@pytest.mark.parametrize(("limit", "status"), [(0, 422), (-1, 422), ("x", 422)])
async def test_bad_limit_is_422(client, limit, status):
    tokens = await _signed_in_times(client, "badlimit", 0)
    response = await _logins(client, tokens["user_id"], bearer(tokens), limit=limit)
    assert response.status_code == status


async def test_limit_is_capped_at_the_page_size_max(client, container):
    tokens = await _signed_in_times(client, "capped", 2)
    container.settings.limits.page_size_max = 1
    page = (await _logins(client, tokens["user_id"], bearer(tokens), limit=100)).json()
    assert len(page["items"]) == 1 and page["next_before"] is not None


async def test_another_user_is_403_and_an_admin_may_read(client, container):
    alice = await _signed_in_times(client, "alice", 1)
    mallory = await _signed_in_times(client, "mallory", 0)
    denied = await _logins(client, alice["user_id"], bearer(mallory))
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    admin = await make_admin(client, container)
    allowed = await _logins(client, alice["user_id"], bearer(admin))
    assert allowed.status_code == 200 and len(allowed.json()["items"]) == 1


async def test_unknown_user_is_404_for_an_admin_and_403_for_anyone_else(client, container):
    admin = await make_admin(client, container)
    nobody = uuid.uuid4()
    missing = await _logins(client, nobody, bearer(admin))
    assert missing.status_code == 404 and missing.json()["code"] == "user_not_found"
    # A non-admin learns nothing about which ids exist.
    mallory = await _signed_in_times(client, "mallory2", 0)
    assert (await _logins(client, nobody, bearer(mallory))).status_code == 403


async def test_a_deleted_user_history_stays_readable_by_an_admin(client, container):
    bob = await _signed_in_times(client, "deletedbob", 1)
    assert (await client.delete("/api/v1/users/me", headers=bearer(bob))).status_code == 204
    admin = await make_admin(client, container)
    response = await _logins(client, bob["user_id"], bearer(admin))
    assert response.status_code == 200 and len(response.json()["items"]) == 1


async def test_unauthenticated_is_401(client):
    response = await _logins(client, uuid.uuid4(), {})
    assert response.status_code == 401


async def test_an_api_key_needs_profile_to_read_its_owner_history(client, container):
    admin = await make_admin(client, container, "keyowner")
    headers = bearer(admin)

    async def key(scopes: list[str]) -> dict[str, str]:
        created = await client.post(
            "/api/v1/api-keys", json={"name": "k", "scopes": scopes}, headers=headers
        )
        assert created.status_code == 201, created.text
        return {"X-API-KEY": created.json()["api_key"]}

    sender = await key(["login_events:write"])
    assert (await _logins(client, admin["user_id"], sender)).status_code == 403
    profile = await key(["profile"])
    assert (await _logins(client, admin["user_id"], profile)).status_code == 200


# --- GET /api/v1/geo/{ip} --------------------------------------------------------------------


async def test_geo_lookup_in_the_bundled_database(client, container):
    admin = await make_admin(client, container)
    response = await client.get("/api/v1/geo/206.81.252.6", headers=bearer(admin))
    assert response.status_code == 200, response.text
    body = response.json()
    # Facts of the bundled GeoLite2-City (2019-12-24).
    assert body["ip"] == "206.81.252.6" and body["located"] is True and body["reason"] is None
    assert (body["latitude"], body["longitude"]) == (39.2293, -76.6907)
    assert body["accuracy_radius_km"] == 20
    assert (body["country_iso"], body["subdivision_iso"]) == ("US", "MD")
    assert body["time_zone"] == "America/New_York"
    assert "GeoLite2 data created by MaxMind" in body["attribution"]
    assert body["database"] == {"type": "GeoLite2-City", "build_date": "2019-12-24"}
    assert {
        "country_name",
        "subdivision_name",
        "city_name",
        "city_geoname_id",
        "country_geoname_id",
        "subdivision_geoname_id",
        "asn",
        "as_org",
    } <= body.keys()


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("10.0.0.1", "private"),
        ("192.168.1.20", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("192.0.2.1", "reserved"),
        ("100.64.0.1", "reserved"),
    ],
)
async def test_geo_lookup_of_an_unlocatable_address_is_200_with_the_reason(
    client, container, ip, reason
):
    admin = await make_admin(client, container)
    response = await client.get(f"/api/v1/geo/{ip}", headers=bearer(admin))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["located"] is False and body["reason"] == reason
    assert body["latitude"] is None and body["longitude"] is None  # never (0, 0)
    assert body["attribution"]


async def test_geo_lookup_normalises_ipv4_mapped_ipv6(client, container):
    admin = await make_admin(client, container)
    body = (await client.get("/api/v1/geo/::ffff:206.81.252.6", headers=bearer(admin))).json()
    assert body["ip"] == "206.81.252.6" and body["latitude"] == 39.2293


@pytest.mark.parametrize(
    "ip", ["206.81.252.432", "01.2.3.4", "1.2.3", "not-an-ip", "1.2.3.0/24", "fe80::1%25eth0"]
)
async def test_geo_lookup_of_an_invalid_address_is_400(client, container, ip):
    admin = await make_admin(client, container)
    response = await client.get(f"/api/v1/geo/{ip}", headers=bearer(admin))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_ip"


async def test_geo_lookup_needs_users_read(client):
    user = await signup(client, "plainuser", STRONG)
    response = await client.get("/api/v1/geo/206.81.252.6", headers=bearer(user))
    assert response.status_code == 403
    assert (await client.get("/api/v1/geo/206.81.252.6")).status_code == 401


async def test_erasing_a_user_erases_their_logins_and_profile(client, container):
    tokens = await _signed_in_times(client, "erasable", 2)
    user_id = tokens["user_id"]
    admin = bearer(await make_admin(client, container))
    async with container.db.read() as session:
        assert user_id in await LoginEventRepository(session).profiles_of([user_id])
    erased = await client.post(f"/api/v1/users/{user_id}/erase", headers=admin)
    assert erased.status_code == 204
    async with container.db.read() as session:
        assert await LoginEventRepository(session).profiles_of([user_id]) == {}
    assert (await _logins(client, user_id, admin)).status_code == 404
