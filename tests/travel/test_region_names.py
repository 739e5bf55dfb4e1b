"""Regions by name: a login stores its region's English name next to the code, and every
answer that names a place by its region code names it in words too (login history, flagged
logins, analytics places and journeys, the `login.flagged` event), whichever path stored the
login (own sign-in, one reported event, NDJSON). Logins and places stored before names were
keep working with a null name. On both databases, with the bundled GeoLite2-City."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from globeguard.analytics.models import CITY_DIM, REGION_DIM, GeoPlace
from globeguard.analytics.repository import AnalyticsRepository
from globeguard.app import create_app
from globeguard.db.base import UtcDateTime
from globeguard.db.engine import create_engine
from globeguard.db.migrate import alembic_config, upgrade
from globeguard.settings import DatabaseSettings
from globeguard.travel.models import LoginEvent
from tests.conftest import PG_ENV, _create_pg_database, _drop_pg_database, make_settings, wipe
from tests.helpers import STRONG, bearer, make_admin, signup

# Where the bundled GeoLite2-City (2019-12-24) puts these addresses.
PARIS, TOKYO = "88.160.133.1", "202.32.10.1"
NAMED = {
    PARIS: ("Paris", "IDF", "Île-de-France", "FR"),
    TOKYO: ("Tokyo", "13", "Tokyo", "JP"),
}
PROXY = "203.0.113.7"
# Recent enough that retention keeps every event.
T0 = int((datetime.now(UTC) - timedelta(days=3)).timestamp())


@pytest.fixture
async def setup(database_url, tmp_path):
    settings = make_settings(
        database_url,
        tmp_path,
        travel={"learning_logins": 0},
        http={"trusted_proxies": [f"{PROXY}/32"]},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(PROXY, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            container = app.state.container
            admin = bearer(await make_admin(client, container))
            key = await client.post(
                "/api/v1/api-keys",
                headers=admin,
                json={"name": "idp", "scopes": ["login_events:write"]},
            )
            try:
                yield client, container, admin, {"X-API-KEY": key.json()["api_key"]}
            finally:
                await wipe(container)


def named(place: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """A place as (city, region code, region name, country), however the answer spells it."""
    if place is None:
        return None
    return (
        place["city_name"],
        place["subdivision_iso"],
        place["subdivision_name"],
        place["country_iso"],
    )


async def get(client, admin, path: str, **params) -> dict[str, Any]:
    response = await client.get(path, headers=admin, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def sign_in_from(client, username: str, ip: str) -> None:
    response = await client.post(
        "/api/v1/auth/signin",
        json={"username": username, "password": STRONG},
        headers={"X-Forwarded-For": ip},
    )
    # A sign-in half the world away from the last may be held back; it is stored either way.
    assert response.status_code in (200, 403), response.text


async def post_stream(client, headers, *events: dict[str, Any]) -> dict[str, Any]:
    body = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    response = await client.post(
        "/api/v1/login-events",
        content=body,
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def top(client, admin, level: str) -> dict[str, tuple[Any, ...]]:
    """The top places at a level: label → (region code, region name, country)."""
    body = await get(client, admin, "/api/v1/analytics/top-locations", level=level, limit=100)
    return {
        p["label"]: (p["subdivision_iso"], p["subdivision_name"], p["country_iso"])
        for p in body["items"]
    }


async def flagged_envelopes(client, admin) -> list[dict[str, Any]]:
    body = await get(client, admin, "/api/v1/audit", type="login.flagged", limit=100)
    return [item["payload"] for item in body["items"]]


async def test_a_sign_in_from_tokyo_names_its_region_everywhere(setup):
    client, _, admin, _ = setup
    alice = await signup(client, "alice")
    await sign_in_from(client, "alice", PARIS)
    await sign_in_from(client, "alice", TOKYO)  # seconds later: impossible

    history = await get(client, admin, f"/api/v1/users/{alice['user_id']}/logins")
    tokyo, paris = history["items"]
    assert named(tokyo["place"]) == NAMED[TOKYO]
    assert named(paris["place"]) == NAMED[PARIS]
    assert tokyo["verdict"] == "impossible"

    (item,) = (await get(client, admin, "/api/v1/logins/flagged"))["items"]
    assert named(item["origin"]) == NAMED[PARIS]
    assert named(item["destination"]) == NAMED[TOKYO]

    (journey,) = (await get(client, admin, "/api/v1/analytics/suspicious-travel"))["items"]
    assert named(journey["origin"]) == NAMED[PARIS]
    assert named(journey["destination"]) == NAMED[TOKYO]

    (event,) = await flagged_envelopes(client, admin)
    origin, destination = event["journey"]["origin"], event["journey"]["destination"]
    assert (origin["subdivision_iso"], origin["subdivision_name"]) == ("IDF", "Île-de-France")
    assert (destination["subdivision_iso"], destination["subdivision_name"]) == ("13", "Tokyo")


async def test_analytics_places_carry_the_region_name_but_countries_have_none(setup):
    client, _, admin, _ = setup
    await signup(client, "alice")
    await sign_in_from(client, "alice", PARIS)
    await sign_in_from(client, "alice", TOKYO)

    assert await top(client, admin, "region") == {
        "FR-IDF": ("IDF", "Île-de-France", "FR"),
        "JP-13": ("13", "Tokyo", "JP"),
    }
    assert await top(client, admin, "city") == {
        "Paris, IDF, FR": ("IDF", "Île-de-France", "FR"),
        "Tokyo, 13, JP": ("13", "Tokyo", "JP"),
    }
    assert await top(client, admin, "country") == {
        "FR": (None, None, "FR"),
        "JP": (None, None, "JP"),
    }


async def test_reported_logins_one_by_one_and_ndjson_store_the_name(setup):
    client, _, admin, headers = setup
    one = {"subject": "one@idp", "ip": TOKYO, "occurred_at": T0, "event_uuid": "one-1"}
    response = await client.post("/api/v1/login-events", headers=headers, json=one)
    assert response.status_code == 201, response.text
    stream = await post_stream(
        client,
        headers,
        {"subject": "bulk@idp", "ip": PARIS, "occurred_at": T0, "event_uuid": "bulk-1"},
        {"subject": "bulk@idp", "ip": TOKYO, "occurred_at": T0 + 600, "event_uuid": "bulk-2"},
    )
    assert stream["accepted"] == 2, stream

    (single,) = (await get(client, admin, "/api/v1/subjects/one@idp/logins"))["items"]
    assert named(single["place"]) == NAMED[TOKYO]
    later, earlier = (await get(client, admin, "/api/v1/subjects/bulk@idp/logins"))["items"]
    assert named(later["place"]) == NAMED[TOKYO]
    assert named(earlier["place"]) == NAMED[PARIS]

    (item,) = (await get(client, admin, "/api/v1/logins/flagged"))["items"]
    assert (named(item["origin"]), named(item["destination"])) == (NAMED[PARIS], NAMED[TOKYO])
    (event,) = await flagged_envelopes(client, admin)
    assert event["journey"]["destination"]["subdivision_name"] == "Tokyo"
    assert event["journey"]["origin"]["subdivision_name"] == "Île-de-France"
    assert (await top(client, admin, "region"))["JP-13"] == ("13", "Tokyo", "JP")


async def test_rows_stored_before_names_keep_the_code_and_a_null_name(setup):
    client, container, admin, headers = setup
    await post_stream(
        client,
        headers,
        {"subject": "old@idp", "ip": PARIS, "occurred_at": T0, "event_uuid": "old-1"},
        {"subject": "old@idp", "ip": TOKYO, "occurred_at": T0 + 600, "event_uuid": "old-2"},
    )
    async with container.db.transaction() as session:  # as the migration leaves them
        await session.execute(sa.update(LoginEvent).values(subdivision_name=None))
        await session.execute(sa.update(GeoPlace).values(subdivision_name=None))

    later, _ = (await get(client, admin, "/api/v1/subjects/old@idp/logins"))["items"]
    assert named(later["place"]) == ("Tokyo", "13", None, "JP")
    (item,) = (await get(client, admin, "/api/v1/logins/flagged"))["items"]
    assert named(item["destination"]) == ("Tokyo", "13", None, "JP")
    (journey,) = (await get(client, admin, "/api/v1/analytics/suspicious-travel"))["items"]
    assert named(journey["origin"]) == ("Paris", "IDF", None, "FR")
    assert (await top(client, admin, "region"))["JP-13"] == ("13", None, "JP")

    # The next login from Tokyo names the place; the old login stays as it was stored.
    await post_stream(
        client,
        headers,
        {"subject": "new@idp", "ip": TOKYO, "occurred_at": T0 + 900, "event_uuid": "new-1"},
    )
    assert (await top(client, admin, "region"))["JP-13"] == ("13", "Tokyo", "JP")
    assert (await top(client, admin, "city"))["Tokyo, 13, JP"] == ("13", "Tokyo", "JP")
    (item,) = (await get(client, admin, "/api/v1/logins/flagged"))["items"]
    assert named(item["destination"]) == ("Tokyo", "13", None, "JP")


async def test_a_place_keeps_its_name_when_a_login_without_one_arrives(setup):
    _, container, _, _ = setup
    seen = datetime(2026, 6, 1, tzinfo=UTC)

    def place(dim: int, name: str | None, at: datetime) -> dict[str, Any]:
        return {
            "dim": dim,
            "geoname_id": 1850147,
            "country_iso": "JP",
            "subdivision_iso": "13",
            "subdivision_name": name,
            "city_name": None,
            "latitude": 35.69,
            "longitude": 139.69,
            "last_seen_at": at,
        }

    async with container.db.transaction() as session:
        repo = AnalyticsRepository(session)
        await repo.note_places([place(REGION_DIM, "Tokyo", seen)])
        await repo.note_places([place(REGION_DIM, None, seen + timedelta(hours=1))])
        await repo.note_places([place(CITY_DIM, None, seen)])
        await repo.note_places([place(CITY_DIM, "Tōkyō", seen - timedelta(hours=1))])
    async with container.db.transaction() as session:
        rows = (await session.execute(sa.select(GeoPlace))).scalars().all()
        stored = {r.dim: (r.subdivision_name, r.last_seen_at) for r in rows}
    assert stored == {
        REGION_DIM: ("Tokyo", seen + timedelta(hours=1)),  # a null never erases a name
        CITY_DIM: ("Tōkyō", seen),  # an earlier login still names a nameless place
    }


async def test_the_geo_lookup_names_the_region(setup):
    client, _, admin, _ = setup
    body = await get(client, admin, f"/api/v1/geo/{TOKYO}")
    assert (body["subdivision_iso"], body["subdivision_name"]) == ("13", "Tokyo")


# --- the migration -------------------------------------------------------------------------

BEFORE = "0010_account_security"
OLD_LOGIN = sa.table(
    "login_event",
    *(sa.column(c) for c in ("event_uuid", "subject", "source", "subdivision_iso")),
    sa.column("occurred_at", UtcDateTime()),
    sa.column("received_at", UtcDateTime()),
    sa.column("success", sa.Boolean()),
    sa.column("located", sa.Boolean()),
)
OLD_PLACE = sa.table(
    "geo_place",
    sa.column("dim"),
    sa.column("geoname_id"),
    sa.column("subdivision_iso"),
    sa.column("last_seen_at", UtcDateTime()),
)


@pytest.fixture
async def empty(backend, tmp_path) -> AsyncIterator[AsyncEngine]:
    """A database of its own: the shared one is at the head revision already."""
    if backend == "sqlite":
        engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/m.db"))
        yield engine
        await engine.dispose()
        return
    url, name = await _create_pg_database(os.environ[PG_ENV])
    engine = create_engine(DatabaseSettings(url=url))
    try:
        yield engine
    finally:
        await engine.dispose()
        await _drop_pg_database(os.environ[PG_ENV], name)


async def test_the_migration_adds_the_names_and_takes_them_away_keeping_the_rows(empty):
    await upgrade(empty, BEFORE)
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    async with empty.begin() as conn:
        await conn.execute(
            sa.insert(OLD_LOGIN),
            [
                {
                    "event_uuid": "e1",
                    "subject": "s",
                    "source": "api",
                    "subdivision_iso": "13",
                    "occurred_at": at,
                    "received_at": at,
                    "success": True,
                    "located": True,
                }
            ],
        )
        await conn.execute(
            sa.insert(OLD_PLACE),
            [{"dim": REGION_DIM, "geoname_id": 1, "subdivision_iso": "13", "last_seen_at": at}],
        )

    await upgrade(empty)
    async with empty.begin() as conn:
        assert (await conn.execute(sa.select(LoginEvent.subdivision_name))).all() == [(None,)]
        assert (await conn.execute(sa.select(GeoPlace.subdivision_name))).all() == [(None,)]
        await conn.execute(sa.update(LoginEvent).values(subdivision_name="Tokyo"))

    async with empty.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), BEFORE))
    async with empty.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: {
                table: {c["name"] for c in sa.inspect(sync).get_columns(table)}
                for table in ("login_event", "geo_place")
            }
        )
        logins = (await conn.execute(sa.select(OLD_LOGIN.c.event_uuid))).all()
        places = (await conn.execute(sa.select(OLD_PLACE.c.subdivision_iso))).all()
    assert "subdivision_name" not in columns["login_event"] | columns["geo_place"]
    assert {"subdivision_iso", "city_name"} <= columns["login_event"]
    assert (logins, places) == ([("e1",)], [("13",)])

    await upgrade(empty)  # and up again
    async with empty.connect() as conn:
        assert (await conn.execute(sa.select(LoginEvent.subdivision_name))).all() == [(None,)]
