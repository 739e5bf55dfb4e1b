"""The analytics endpoints answer what the stored events say: every answer is compared with
counts the test computes itself from the raw `login_event` rows, on SQLite and PostgreSQL,
after events arrived out of order through both recording paths (bulk NDJSON and sign-in)."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from globeguard.analytics.rollups import RollupObserver
from globeguard.app import create_app
from globeguard.travel.models import LoginEvent
from tests.conftest import make_settings, wipe
from tests.helpers import STRONG, bearer, make_admin, signin, signup
from tests.support.mmdb import city_record, write_city_db

# network → (lat, lon, country, subdivision, city)
PLACES: dict[str, tuple[float, float, str, tuple[str, str, int], tuple[str, int]]] = {
    "203.1.1.0/24": (40.7128, -74.0060, "US", ("NY", "New York", 5128638), ("New York", 5128581)),
    "203.2.2.0/24": (37.7749, -122.4194, "US", ("CA", "California", 5332921), ("SF", 5391959)),
    "203.3.3.0/24": (51.5074, -0.1278, "GB", ("ENG", "England", 6269131), ("London", 2643743)),
    "203.4.4.0/24": (48.8566, 2.3522, "FR", ("IDF", "Ile-de-France", 3012874), ("Paris", 2988507)),
    "203.5.5.0/24": (52.5200, 13.4050, "DE", ("BE", "Berlin", 2950157), ("Berlin", 2950159)),
    "203.6.6.0/24": (-33.8688, 151.2093, "AU", ("NSW", "NSW", 2155400), ("Sydney", 2147714)),
    "203.7.7.0/24": (39.9042, 116.4074, "CN", ("BJ", "Beijing", 2038349), ("Beijing", 1816670)),
}  # fmt: skip
NETWORKS = list(PLACES)
COUNTRY_ONLY = "203.8.8.8"  # a country, no coordinates
PRIVATE = "10.1.2.3"  # unlocatable
TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
TIERS = ("free", "basic", "premium")


def ip_in(network: str, rng: random.Random) -> str:
    return network.replace("0/24", str(rng.randint(1, 254)))


@pytest.fixture
async def world(database_url, tmp_path):
    records: dict[str, Any] = {
        net: city_record(lat, lon, radius=5, country=cc, subdivision=sub, city=city)
        for net, (lat, lon, cc, sub, city) in PLACES.items()
    }
    records[COUNTRY_ONLY + "/32"] = city_record(country="CN")
    settings = make_settings(
        database_url,
        tmp_path,
        geoip={"city_db": write_city_db(tmp_path / "city.mmdb", records)},
        travel={"learning_logins": 0},
        http={"trusted_proxies": ["203.0.113.7/32"]},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
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


async def populate(client, headers, admin) -> dict[str, str]:
    """Users with metadata (signing in themselves, and reported in bulk under their id) and
    external subjects, over a week, posted in shuffled batches so late arrivals re-grade.
    Returns user id → tier."""
    rng = random.Random(7)
    tiers: dict[str, str] = {}
    users = []
    for i in range(6):
        tier = TIERS[i % 3]
        body = await signup(client, f"user{i}", user_metadata={"subscription_tier": tier})
        user_id = body["user"]["id"] if "user" in body else body["id"]
        tiers[user_id] = tier
        users.append(user_id)
    subjects = users + [f"ext-{i}@idp" for i in range(5)]
    events = []
    for n in range(260):
        subject = rng.choice(subjects)
        roll = rng.random()
        ip = (
            ip_in(rng.choice(NETWORKS), rng)
            if roll < 0.9
            else (COUNTRY_ONLY if roll < 0.95 else PRIVATE)
        )
        when = TODAY - timedelta(days=rng.randint(0, 6), minutes=rng.randint(0, 600))
        events.append(
            {
                "subject": subject,
                "ip": ip,
                "occurred_at": when.isoformat(),
                "success": rng.random() < 0.8,
                "event_uuid": f"e{n}",
            }
        )
    rng.shuffle(events)
    for start in range(0, len(events), 40):
        body = b"\n".join(orjson.dumps(e) for e in events[start : start + 40])
        response = await client.post(
            "/api/v1/login-events",
            content=body,
            headers={**headers, "Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(events[start : start + 40])
    # Globeguard's own sign-ins carry user_id; the address comes through a trusted proxy.
    for i, network in enumerate(NETWORKS[:4]):
        response = await client.post(
            "/api/v1/auth/signin",
            json={"username": f"user{i}", "password": STRONG},
            headers={"X-Forwarded-For": ip_in(network, rng)},
        )
        assert response.status_code in (200, 403), response.text
    return tiers


async def raw_events(container) -> list[Any]:
    async with container.db.read() as session:
        return (await session.execute(select(LoginEvent))).scalars().all()


def owner(event, tiers) -> str | None:
    if event.user_id is not None:
        return str(event.user_id)
    return event.subject if event.subject in tiers else None


def expected_cells(events, size: float, weight=None) -> dict[tuple[float, float], int]:
    """Binned independently of `analytics.grid`: floor to the size, centre of the square."""
    counts: Counter[tuple[float, float]] = Counter()
    for e in events:
        if not e.located or e.latitude is None:
            continue
        row = min(math.floor((e.latitude + 90) / size), math.ceil(180 / size) - 1)
        col = math.floor((e.longitude + 180) / size)
        counts[(round(-90 + (row + 0.5) * size, 6), round(-180 + (col + 0.5) * size, 6))] += 1
    return dict(counts)


def cells_of(body) -> dict[tuple[float, float], int]:
    return {(lat, lon): w for lat, lon, w in body["cells"]}


async def get(client, admin, path, **params) -> dict[str, Any]:
    response = await client.get(f"/api/v1/analytics/{path}", params=params, headers=bearer(admin))
    assert response.status_code == 200, response.text
    return response.json()


async def test_answers_match_counts_from_the_raw_events(world, monkeypatch):
    client, container, admin, headers = world
    regraded = []
    original = RollupObserver.regraded

    async def counting(self, session, changes):
        regraded.extend(changes)
        await original(self, session, changes)

    monkeypatch.setattr(RollupObserver, "regraded", counting)
    tiers = await populate(client, headers, admin)
    assert regraded, "late arrivals must have changed stored verdicts"
    events = await raw_events(container)
    assert len(events) > 250

    # World view, every event.
    body = await get(client, admin, "heatmap", zoom=0)
    assert body["cell_deg"] == 8.0
    assert cells_of(body) == expected_cells(events, 8.0)

    # A day range and an outcome, finer grid.
    first = (TODAY - timedelta(days=3)).date()
    in_range = [e for e in events if first <= e.occurred_at.date() and e.success]
    body = await get(client, admin, "heatmap", zoom=6, outcome="success", **{"from": str(first)})
    assert body["cell_deg"] == 2.0  # the whole world at zoom 6 would be too many cells
    assert cells_of(body) == expected_cells(in_range, 2.0)

    # Zoomed into Europe: a finer grid, only the cells in the box.
    europe = [e for e in in_range if e.country_iso in ("GB", "FR", "DE") and e.located]
    body = await get(
        client,
        admin,
        "heatmap",
        zoom=6,
        bbox="35,-15,60,30",
        outcome="success",
        **{"from": str(first)},
    )
    assert body["cell_deg"] == 0.25
    assert cells_of(body) == expected_cells(europe, 0.25)

    # A range around every stored day is answered from the all-days totals: same counts.
    wide = {"from": str((TODAY - timedelta(days=30)).date()), "to": str(TODAY.date())}
    body = await get(client, admin, "heatmap", zoom=0, **wide)
    assert cells_of(body) == expected_cells(events, 8.0)
    top = await get(client, admin, "top-locations", level="country", limit=100, **wide)
    assert top["total"] == sum(1 for e in events if e.country_geoname_id)

    # Verdicts.
    flagged = [e for e in events if e.verdict in ("suspicious", "impossible")]
    assert flagged, "the data must contain flagged journeys"
    body = await get(client, admin, "heatmap", zoom=3, verdict="suspicious,impossible")
    assert cells_of(body) == expected_cells(flagged, body["cell_deg"])

    # A user query: only premium users' events.
    premium = [e for e in events if tiers.get(owner(e, tiers) or "") == "premium"]
    body = await get(client, admin, "heatmap", zoom=2, q="user_metadata.subscription_tier:premium")
    assert cells_of(body) == expected_cells(premium, body["cell_deg"])
    assert premium and len(premium) < len(events)
    recent = [e for e in premium if e.occurred_at.date() >= first]
    body = await get(
        client,
        admin,
        "heatmap",
        zoom=2,
        q="user_metadata.subscription_tier:premium",
        **{"from": str(first)},
    )
    assert cells_of(body) == expected_cells(recent, body["cell_deg"])


async def test_distinct_users_and_last_logins_match(world):
    client, container, admin, headers = world
    tiers = await populate(client, headers, admin)
    events = await raw_events(container)

    body = await get(client, admin, "heatmap", zoom=4, by="users")
    subjects_per_cell: dict[tuple[float, float], set[str]] = defaultdict(set)
    for e in events:
        for cell in expected_cells([e], body["cell_deg"]):
            subjects_per_cell[cell].add(e.subject)
    assert cells_of(body) == {c: len(s) for c, s in subjects_per_cell.items()}

    latest: dict[str, Any] = {}
    for e in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        if e.success and e.located:
            latest[e.subject] = e
    body = await get(client, admin, "heatmap", zoom=1, basis="last_login")
    assert cells_of(body) == expected_cells(latest.values(), body["cell_deg"])

    body = await get(client, admin, "top-locations", level="country", basis="last_login")
    countries = Counter(e.country_geoname_id for e in latest.values() if e.country_geoname_id)
    assert {i["geoname_id"]: i["count"] for i in body["items"]} == dict(countries)
    assert body["total"] == sum(countries.values())
    assert tiers  # the users exist


async def test_top_locations_count_and_share(world):
    client, container, admin, headers = world
    await populate(client, headers, admin)
    events = await raw_events(container)

    for level, column in (
        ("city", "city_geoname_id"),
        ("region", "subdivision_geoname_id"),
        ("country", "country_geoname_id"),
    ):
        body = await get(client, admin, "top-locations", level=level, limit=100)
        counts = Counter(getattr(e, column) for e in events if getattr(e, column))
        total = sum(counts.values())
        assert body["total"] == total
        assert {i["geoname_id"]: i["count"] for i in body["items"]} == dict(counts)
        for item in body["items"]:
            assert item["share"] == round(100 * item["count"] / total, 2)
        listed = [i["count"] for i in body["items"]]
        assert listed == sorted(listed, reverse=True)

    body = await get(client, admin, "top-locations", level="city", limit=3, outcome="failure")
    failures = Counter(e.city_geoname_id for e in events if e.city_geoname_id and not e.success)
    assert [i["count"] for i in body["items"]] == sorted(failures.values(), reverse=True)[:3]
    assert body["total"] == sum(failures.values())
    london = next(
        i
        for i in (await get(client, admin, "top-locations"))["items"]
        if i["geoname_id"] == 2643743
    )
    assert london["label"] == "London, ENG, GB" and london["lat"] == pytest.approx(51.5074)


async def test_suspicious_travel_lists_each_flagged_journey(world):
    client, container, admin, headers = world
    await populate(client, headers, admin)
    events = await raw_events(container)
    flagged = {e.event_uuid: e for e in events if e.verdict in ("suspicious", "impossible")}
    by_uuid = {e.event_uuid: e for e in events}

    body = await get(client, admin, "suspicious-travel", limit=1000)
    assert {j["event_uuid"] for j in body["items"]} == set(flagged)
    for journey in body["items"]:
        event = flagged[journey["event_uuid"]]
        reasons = event.verdict_reasons
        assert journey["verdict"] == event.verdict
        assert journey["destination"]["lat"] == pytest.approx(event.latitude)
        assert journey["origin"]["lat"] == pytest.approx(reasons["origin"]["lat"])
        assert journey["speed_mph"] == pytest.approx(reasons["speed_mph"])
        # Both ends named as their logins were located: the anchor the verdict measured
        # from, and the flagged login itself.
        anchor = by_uuid[reasons["earlier"]]
        for end, login in ((journey["origin"], anchor), (journey["destination"], event)):
            assert login.city_name is not None
            assert (end["city_name"], end["subdivision_iso"], end["country_iso"]) == (
                login.city_name,
                login.subdivision_iso,
                login.country_iso,
            )
    times = [j["occurred_at"] for j in body["items"]]
    assert times == sorted(times, reverse=True)

    only = await get(client, admin, "suspicious-travel", verdict="impossible", limit=1000)
    assert {j["event_uuid"] for j in only["items"]} == {
        u for u, e in flagged.items() if e.verdict == "impossible"
    }


async def test_bad_requests_say_why(world):
    client, _, admin, _ = world
    cases = [
        ("heatmap", {"zoom": "0", "verdcit": "x"}, "invalid_parameter", "verdcit"),
        ("heatmap", {"zoom": "99"}, "invalid_parameter", "zoom"),
        ("heatmap", {"bbox": "10,20,5,30"}, "invalid_parameter", "bbox"),
        ("heatmap", {"from": "2026-01-02T10:00:00"}, "invalid_parameter", "from"),
        ("heatmap", {"from": "2026-01-03", "to": "2026-01-01"}, "invalid_parameter", "from"),
        ("heatmap", {"basis": "last_login", "outcome": "failure"}, "invalid_parameter", "basis"),
        ("top-locations", {"level": "planet"}, "invalid_parameter", "level"),
        ("top-locations", {"limit": "0"}, "invalid_parameter", "limit"),
        ("suspicious-travel", {"verdict": "plausible"}, "invalid_parameter", "verdict"),
        ("heatmap", {"q": "user_metadata.tier:(free"}, "invalid_query", None),
        ("top-locations", {"q": "nosuchfield:1"}, "invalid_query", None),
    ]
    for path, params, code, parameter in cases:
        response = await client.get(
            f"/api/v1/analytics/{path}", params=params, headers=bearer(admin)
        )
        assert response.status_code == 400, (params, response.text)
        problem = response.json()
        assert problem["code"] == code, problem
        if parameter:
            assert problem["parameter"] == parameter and parameter in problem["detail"]
    twice = await client.get("/api/v1/analytics/heatmap?zoom=1&zoom=2", headers=bearer(admin))
    assert twice.status_code == 400 and "more than once" in twice.json()["detail"]


async def test_admins_and_analytics_keys_only(world):
    client, _, admin, _ = world
    await signup(client, "plain")
    plain = await signin(client, "plain")
    assert (await client.get("/api/v1/analytics/heatmap", headers=bearer(plain))).status_code == 403
    assert (await client.get("/api/v1/analytics/heatmap")).status_code == 401
    key = await client.post(
        "/api/v1/api-keys",
        headers=bearer(admin),
        json={"name": "dash", "scopes": ["analytics:read"]},
    )
    reader = {"X-API-KEY": key.json()["api_key"]}
    for path in ("heatmap", "top-locations", "suspicious-travel"):
        assert (await client.get(f"/api/v1/analytics/{path}", headers=reader)).status_code == 200
    other = await client.post(
        "/api/v1/api-keys",
        headers=bearer(admin),
        json={"name": "events", "scopes": ["login_events:write"]},
    )
    writer = {"X-API-KEY": other.json()["api_key"]}
    assert (await client.get("/api/v1/analytics/heatmap", headers=writer)).status_code == 403


async def test_the_openapi_page_lists_every_filter(client):
    spec = (await client.get("/openapi.json")).json()
    for path, own in (
        ("heatmap", {"zoom", "bbox", "by", "basis"}),
        ("top-locations", {"level", "limit", "by", "basis", "bbox"}),
        ("suspicious-travel", {"limit"}),
    ):
        declared = spec["paths"][f"/api/v1/analytics/{path}"]["get"]["parameters"]
        assert {p["name"] for p in declared} == {"from", "to", "outcome", "verdict", "q"} | own
