"""Sign-ins through Globeguard's own endpoints become login events with a place and a travel
verdict, read back through `GET /api/v1/users/{id}/logins` and the audit trail.

The app sits behind a trusted proxy (the test client's peer is 127.0.0.1, trusted), so each
request picks its client address with X-Forwarded-For. A tiny GeoIP database places those
addresses in New York, Newark (14 km from it), London, Sydney and Berlin. Sign-in times come
from a clock the tests move, so "ten minutes later" is exact.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from globeguard.app import create_app
from globeguard.identity.auth import service as auth_service
from globeguard.travel.models import LoginEvent
from globeguard.wiring import Container
from tests.conftest import make_settings, wipe
from tests.helpers import STRONG, bearer, make_admin
from tests.support.mmdb import city_record, write_city_db

NEW_YORK_IP, NEWARK_IP, LONDON_IP = "11.1.1.1", "11.2.2.2", "11.3.3.3"
SYDNEY_IP, BERLIN_IP, NULL_ISLAND_IP, UNKNOWN_IP = "11.4.4.4", "11.5.5.5", "11.6.6.6", "11.9.9.9"

RECORDS = {
    "11.1.1.0/24": city_record(
        40.7128,
        -74.0060,
        radius=5,
        time_zone="America/New_York",
        country="US",
        subdivision=("NY", "New York", 5128638),
        city=("New York", 5128581),
    ),
    "11.2.2.0/24": city_record(
        40.7357,
        -74.1724,
        radius=1,
        time_zone="America/New_York",
        country="US",
        subdivision=("NJ", "New Jersey", 5101760),
        city=("Newark", 5101798),
    ),
    "11.3.3.0/24": city_record(
        51.5074,
        -0.1278,
        radius=5,
        time_zone="Europe/London",
        country="GB",
        subdivision=("ENG", "England", 6269131),
        city=("London", 2643743),
    ),
    "11.4.4.0/24": city_record(
        -33.8688,
        151.2093,
        radius=5,
        time_zone="Australia/Sydney",
        country="AU",
        subdivision=("NSW", "New South Wales", 2155400),
        city=("Sydney", 2147714),
    ),
    "11.5.5.0/24": city_record(
        52.52,
        13.405,
        radius=5,
        time_zone="Europe/Berlin",
        country="DE",
        subdivision=("BE", "Berlin", 2950157),
        city=("Berlin", 2950159),
    ),
    # A placeholder (0, 0) some databases use for "somewhere": must never become a place.
    "11.6.6.0/24": city_record(0.0, 0.0, radius=1000, country="US"),
}


class Clock:
    """Stands in for `utcnow` in the sign-in service."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    container: Container

    async def signup(self, username: str) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/signup", json={"username": username, "password": STRONG}
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def signin(
        self, username: str, ip: str, password: str = STRONG, status: int = 200
    ) -> httpx.Response:
        response = await self.client.post(
            "/api/v1/auth/signin",
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": ip, "User-Agent": "travel-test"},
        )
        assert response.status_code == status, response.text
        return response

    async def logins(self, user_id: str, tokens: dict[str, Any]) -> list[dict[str, Any]]:
        """The user's events, oldest first (the API answers newest first)."""
        response = await self.client.get(f"/api/v1/users/{user_id}/logins", headers=bearer(tokens))
        assert response.status_code == 200, response.text
        return list(reversed(response.json()["items"]))

    async def audit(self, admin: dict[str, Any], event_type: str, user_id: str) -> list[dict]:
        response = await self.client.get(
            "/api/v1/audit",
            params={"type": event_type, "user_id": user_id},
            headers=bearer(admin),
        )
        assert response.status_code == 200, response.text
        return response.json()["items"]


@contextlib.asynccontextmanager
async def _gateway(database_url, tmp_path, **overrides: Any) -> AsyncIterator[Gateway]:
    db_file = write_city_db(tmp_path / "travel-city.mmdb", RECORDS)
    # No learning period unless a test asks for one: verdicts come from the journeys alone.
    travel = {"learning_logins": 0, **overrides.pop("travel", {})}
    settings = make_settings(
        database_url,
        tmp_path,
        geoip={"city_db": db_file},
        http={"trusted_proxies": ["127.0.0.0/8"]},
        travel=travel,
        **overrides,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        container = app.state.container
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            try:
                yield Gateway(app, client, container)
            finally:
                await wipe(container)


@pytest.fixture
async def open_gateway(database_url, tmp_path):
    """`await open_gateway(travel={...}, risk={...})`: an app with those settings."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(**overrides: Any) -> Gateway:
            return await stack.enter_async_context(_gateway(database_url, tmp_path, **overrides))

        yield open_


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(auth_service, "utcnow", fake)
    return fake


async def _events_of_subject(container: Container, subject: str) -> list[LoginEvent]:
    async with container.db.read() as session:
        query = select(LoginEvent).where(LoginEvent.subject == subject).order_by(LoginEvent.id)
        return list((await session.scalars(query)).all())


def journey(reasons: dict[str, Any] | None) -> dict[str, Any]:
    """The journey that earned a login its verdict: the pair from the preceding login. The
    stored reasons (and the alert's `journey`) are that pair; an earlier layout nested it
    under `preceding`, beside the event's other pair."""
    assert reasons is not None
    return reasons.get("preceding") or reasons.get("journey") or reasons


# --- every attempt is recorded ------------------------------------------------------------


async def test_every_attempt_is_recorded_successes_and_failures(open_gateway, clock):
    gw = await open_gateway()
    user = await gw.signup("walker")
    await gw.signin("walker", NEW_YORK_IP)
    clock.advance(minutes=1)
    await gw.signin("walker", NEW_YORK_IP, password="wrong-password", status=401)
    clock.advance(minutes=1)
    token = await gw.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "walker", "password": STRONG},
        headers={"X-Forwarded-For": NEWARK_IP},
    )
    assert token.status_code == 200, token.text

    events = await gw.logins(user["user_id"], user)
    assert [(e["success"], e["failure_reason"], e["ip"]) for e in events] == [
        (True, None, NEW_YORK_IP),
        (False, "invalid_credentials", NEW_YORK_IP),
        (True, None, NEWARK_IP),
    ]
    assert {e["source"] for e in events} == {"globeguard"}
    assert {e["user_agent"] for e in events[:2]} == {"travel-test"}
    assert events[0]["place"] == {
        "lat": 40.7128,
        "lon": -74.006,
        "accuracy_radius_km": 5,
        "country_iso": "US",
        "country_geoname_id": 6252001,
        "subdivision_iso": "NY",
        "subdivision_name": "New York",
        "city_name": "New York",
        "city_geoname_id": 5128581,
        "time_zone": "America/New_York",
    }
    assert events[0]["geo_reason"] is None
    assert len({e["event_uuid"] for e in events}) == 3


async def test_a_blocked_account_attempt_is_recorded(open_gateway, clock):
    gw = await open_gateway()
    user = await gw.signup("blockee")
    admin = await make_admin(gw.client, gw.container)
    blocked = await gw.client.post(f"/api/v1/users/{user['user_id']}/block", headers=bearer(admin))
    assert blocked.status_code == 200
    refused = await gw.signin("blockee", LONDON_IP, status=403)
    assert refused.json()["code"] == "account_blocked"
    (event,) = await gw.logins(user["user_id"], admin)
    assert (event["success"], event["failure_reason"]) == (False, "blocked")
    assert event["place"]["city_name"] == "London"


async def test_an_unknown_username_is_recorded_under_that_name(open_gateway, clock):
    gw = await open_gateway()
    await gw.signin("  Ghost ", SYDNEY_IP, status=401)
    (event,) = await _events_of_subject(gw.container, "ghost")
    assert event.user_id is None and event.success is False
    assert event.failure_reason == "invalid_credentials"
    assert event.ip == SYDNEY_IP and event.located and event.city_name == "Sydney"
    assert event.verdict == "none"


# --- where the address comes from ---------------------------------------------------------


async def test_x_forwarded_for_is_used_only_from_a_trusted_peer(open_gateway, clock):
    gw = await open_gateway()
    user = await gw.signup("proxied")
    await gw.signin("proxied", LONDON_IP)  # trusted peer: the header's address
    clock.advance(minutes=1)
    # The client wrote the left entry itself; our proxy appended the one it saw.
    await gw.signin("proxied", f"{SYDNEY_IP}, {LONDON_IP}")
    clock.advance(minutes=1)
    await gw.signin("proxied", f"{SYDNEY_IP}, {LONDON_IP}, 127.0.0.9")  # two proxies of ours
    clock.advance(minutes=1)
    direct = httpx.ASGITransport(app=gw.app, client=(NEW_YORK_IP, 4321))
    async with httpx.AsyncClient(transport=direct, base_url="http://t") as untrusted:
        response = await untrusted.post(
            "/api/v1/auth/signin",
            json={"username": "proxied", "password": STRONG},
            headers={"X-Forwarded-For": SYDNEY_IP},
        )
        assert response.status_code == 200
    clock.advance(minutes=1)
    no_header = await gw.client.post(
        "/api/v1/auth/signin", json={"username": "proxied", "password": STRONG}
    )
    assert no_header.status_code == 200

    events = await gw.logins(user["user_id"], user)
    assert [e["ip"] for e in events] == [LONDON_IP, LONDON_IP, LONDON_IP, NEW_YORK_IP, "127.0.0.1"]
    assert events[-1]["place"] is None and events[-1]["geo_reason"] == "loopback"


# --- verdicts -----------------------------------------------------------------------------


async def test_new_york_then_london_ten_minutes_later_is_impossible(open_gateway, clock):
    gw = await open_gateway()
    user = await gw.signup("jetsetter")
    await gw.signin("jetsetter", NEW_YORK_IP)
    clock.advance(minutes=10)
    second = await gw.signin("jetsetter", LONDON_IP)  # allowed by default
    assert second.json()["access_token"]

    first, last = await gw.logins(user["user_id"], user)
    assert first["verdict"] == "none"
    assert last["verdict"] == "impossible"
    pair = journey(last["verdict_reasons"])
    assert pair["earlier"] == first["event_uuid"] and pair["later"] == last["event_uuid"]
    assert (pair["grade"], pair["raw_grade"], pair["lowered_by"]) == (
        "impossible",
        "impossible",
        None,
    )
    assert pair["elapsed_seconds"] == 600
    assert pair["threshold_mph"] == 500
    assert 5550 < pair["distance_km"] < 5600  # New York to London
    assert pair["adjusted_distance_km"] == pytest.approx(pair["distance_km"] - 10)
    assert pair["speed_mph"] == pytest.approx(pair["distance_mi"] * 6)
    assert pair["adjusted_speed_mph"] > 20_000
    assert pair["origin"]["city"] == "New York" and pair["destination"]["city"] == "London"
    assert (pair["origin"]["lat"], pair["destination"]["lat"]) == (40.7128, 51.5074)

    admin = await make_admin(gw.client, gw.container)
    (alert,) = await gw.audit(admin, "user.signin.suspicious", user["user_id"])
    assert alert["payload"]["grade"] == "impossible"
    assert alert["payload"]["login_event"] == last["event_uuid"]
    assert journey(alert["payload"])["destination"]["city"] == "London"
    succeeded = await gw.audit(admin, "user.signin.succeeded", user["user_id"])
    assert [s["payload"]["travel"] for s in succeeded] == ["none", "impossible"]


async def test_the_deny_policy_refuses_the_sign_in_but_keeps_the_record(open_gateway, clock):
    gw = await open_gateway(risk={"impossible_travel": "deny"})
    user = await gw.signup("denied")
    await gw.signin("denied", NEW_YORK_IP)
    clock.advance(minutes=10)
    refused = await gw.signin("denied", LONDON_IP, status=403)
    assert refused.json()["code"] == "impossible_travel"
    assert "access_token" not in refused.json()

    events = await gw.logins(user["user_id"], user)
    assert [(e["ip"], e["verdict"]) for e in events] == [
        (NEW_YORK_IP, "none"),
        (LONDON_IP, "impossible"),
    ]
    admin = await make_admin(gw.client, gw.container)
    (alert,) = await gw.audit(admin, "user.signin.suspicious", user["user_id"])
    assert alert["payload"]["login_event"] == events[-1]["event_uuid"]


async def test_the_deny_policy_applies_to_the_oauth_password_grant(open_gateway, clock):
    gw = await open_gateway(risk={"impossible_travel": "deny"})
    await gw.signup("oauthuser")
    await gw.signin("oauthuser", NEW_YORK_IP)
    clock.advance(minutes=10)
    response = await gw.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "oauthuser", "password": STRONG},
        headers={"X-Forwarded-For": SYDNEY_IP},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_the_deny_policy_is_not_bypassed_by_retrying(open_gateway, clock):
    gw = await open_gateway(risk={"impossible_travel": "deny"})
    await gw.signup("retrier")
    await gw.signin("retrier", NEW_YORK_IP)
    clock.advance(minutes=10)
    await gw.signin("retrier", LONDON_IP, status=403)
    clock.advance(minutes=1)
    await gw.signin("retrier", LONDON_IP, status=403)


async def test_the_deny_policy_is_not_bypassed_by_a_failed_attempt_first(open_gateway, clock):
    gw = await open_gateway(risk={"impossible_travel": "deny"})
    await gw.signup("prober")
    await gw.signin("prober", NEW_YORK_IP)
    clock.advance(minutes=10)
    await gw.signin("prober", LONDON_IP, password="not-the-password", status=401)
    clock.advance(seconds=5)
    await gw.signin("prober", LONDON_IP, status=403)


async def test_new_york_then_newark_is_plausible_by_min_distance(open_gateway, clock):
    gw = await open_gateway()
    user = await gw.signup("commuter")
    await gw.signin("commuter", NEW_YORK_IP)
    clock.advance(seconds=10)  # 14 km in 10 s is too fast, but it is one metro area
    await gw.signin("commuter", NEWARK_IP)
    _, newark = await gw.logins(user["user_id"], user)
    pair = journey(newark["verdict_reasons"])
    assert newark["verdict"] == "plausible"
    assert (pair["raw_grade"], pair["lowered_by"]) == ("impossible", "min_distance")
    assert pair["distance_km"] < 100
    admin = await make_admin(gw.client, gw.container)
    assert await gw.audit(admin, "user.signin.suspicious", user["user_id"]) == []


async def test_the_learning_period_lowers_the_first_journeys_one_grade(open_gateway, clock):
    gw = await open_gateway(travel={"learning_logins": 3})
    user = await gw.signup("learner")
    for ip in (NEW_YORK_IP, LONDON_IP, SYDNEY_IP, BERLIN_IP):
        await gw.signin("learner", ip)
        clock.advance(minutes=10)
    events = await gw.logins(user["user_id"], user)
    # Learning lowers impossible to suspicious: a takeover on day one still raises a flag.
    assert [e["verdict"] for e in events] == ["none", "suspicious", "suspicious", "impossible"]
    lowered = [journey(e["verdict_reasons"])["lowered_by"] for e in events[1:]]
    assert lowered == ["learning", "learning", None]
    raw = [journey(e["verdict_reasons"])["raw_grade"] for e in events[1:]]
    assert raw == ["impossible", "impossible", "impossible"]
    # Flagged sign-ins anchor nothing: each is measured from New York.
    assert [journey(e["verdict_reasons"])["earlier"] for e in events[1:]] == [
        events[0]["event_uuid"]
    ] * 3
    admin = await make_admin(gw.client, gw.container)
    alerts = await gw.audit(admin, "user.signin.suspicious", user["user_id"])
    assert {a["payload"]["login_event"] for a in alerts} == {e["event_uuid"] for e in events[1:]}


async def test_unlocatable_addresses_are_unverifiable_and_never_null_island(open_gateway, clock):
    gw = await open_gateway()
    user = await gw.signup("lanuser")
    await gw.signin("lanuser", "10.1.2.3")
    clock.advance(minutes=10)
    await gw.signin("lanuser", NEW_YORK_IP)
    clock.advance(minutes=10)
    await gw.signin("lanuser", NULL_ISLAND_IP)
    clock.advance(minutes=10)
    await gw.signin("lanuser", UNKNOWN_IP)

    private, new_york, null_island, unknown = await gw.logins(user["user_id"], user)
    assert (private["ip"], private["place"], private["geo_reason"]) == ("10.1.2.3", None, "private")
    assert private["verdict"] == "none"
    assert new_york["verdict"] == "unverifiable"
    pair = journey(new_york["verdict_reasons"])
    assert pair["origin"] is None and pair["distance_km"] is None and pair["speed_mph"] is None
    assert (null_island["place"], null_island["geo_reason"]) == (None, "no_location")
    assert null_island["verdict"] == "unverifiable"
    assert (unknown["place"], unknown["geo_reason"]) == (None, "not_found")
    assert unknown["verdict"] == "unverifiable"

    admin = await make_admin(gw.client, gw.container)
    assert await gw.audit(admin, "user.signin.suspicious", user["user_id"]) == []
    async with gw.container.db.read() as session:
        rows = (await session.scalars(select(LoginEvent))).all()
    assert rows and not [r for r in rows if r.latitude == 0 and r.longitude == 0]
    assert all(r.latitude is None for r in rows if not r.located)
