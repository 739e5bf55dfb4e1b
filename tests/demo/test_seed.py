"""Seeding demo data through the bulk paths: the sign-ins belong to their users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from globeguard.demo.service import DemoSeeder
from globeguard.kit.collector import collecting_between_batches
from tests.helpers import bearer, make_admin


@pytest.fixture(autouse=True)
def batch_ends(monkeypatch) -> list[int]:
    """The seeder's batch ends, counted instead of collected. A full collection walks every
    live object, and in a test process that has run hundreds of tests one took seconds: four
    of them made the chunking test last 38 s. What a collection does is checked in
    tests/kit/test_collector.py. The collector is still off during the seed, as it would be,
    so the producer is forked in the same state."""
    import globeguard.demo.service as demo

    ends: list[int] = []

    @contextmanager
    def counting_between_batches() -> Iterator[Callable[[], None]]:
        with collecting_between_batches():
            yield lambda: ends.append(1)

    monkeypatch.setattr(demo, "collecting_between_batches", counting_between_batches)
    return ends


async def test_seeded_sign_ins_are_in_each_users_history(client, container):
    settings = container.settings
    seeder = DemoSeeder(container.db, container.ingestor, settings.geoip)
    report = await seeder.seed(3, seed=7, until=datetime.now(UTC))
    assert report.users == 3 and report.events > 0
    admin = bearer(await make_admin(client, container))
    listed = await client.get("/api/v1/users", headers=admin, params={"limit": 10})
    demo_users = [u for u in listed.json()["items"] if u["username"] != "root"]
    assert len(demo_users) == 3
    total = 0
    for user in demo_users:
        history = await client.get(f"/api/v1/users/{user['id']}/logins", headers=admin)
        assert history.status_code == 200
        items = history.json()["items"]
        assert all(item["ip"] for item in items)
        total += len(items)
    assert total == report.events


async def test_chunks_of_any_size_store_every_user_once(client, container, monkeypatch, batch_ends):
    import globeguard.demo.service as demo
    from globeguard.kit.errors import Conflict

    monkeypatch.setattr(demo, "USERS_PER_CHUNK", 2)
    settings = container.settings
    seeder = DemoSeeder(container.db, container.ingestor, settings.geoip)
    ticks: list[int] = []
    report = await seeder.seed(7, seed=11, until=datetime.now(UTC), progress=ticks.append)
    assert report.users == 7 and ticks == [2, 2, 2, 1]
    assert len(batch_ends) == 4  # one after each chunk's transaction
    admin = bearer(await make_admin(client, container))
    listed = await client.get("/api/v1/users", headers=admin, params={"limit": 20})
    names = sorted(u["username"] for u in listed.json()["items"] if u["username"] != "root")
    assert names == sorted(f"demo11-{n}" for n in range(1, 8))

    with pytest.raises(Conflict):  # the same seed again would duplicate its users
        await seeder.seed(7, seed=11, until=datetime.now(UTC))
    again = await client.get("/api/v1/users", headers=admin, params={"limit": 20})
    assert len(again.json()["items"]) == len(listed.json()["items"])


def test_producing_chunks_leaves_no_cycles_behind():
    """The producer process runs without the cycle collector; that is only safe while what
    it does leaves nothing that reference counting cannot free. Checked in a fresh
    interpreter, as the producer is: other tests' threads would make garbage meanwhile."""
    import subprocess
    import sys

    script = """
import gc
from datetime import UTC, datetime
from globeguard.adapters.geoip.maxmind import MaxMindLocator
from globeguard.analytics.rollups import RollupObserver
from globeguard.demo.service import chunks
from globeguard.settings import GeoIpSettings, TravelSettings
from globeguard.travel.ingest import BulkIngestor
locator = MaxMindLocator.from_settings(GeoIpSettings())
ingestor = BulkIngestor(locator, TravelSettings(), (RollupObserver(),))
until = datetime(2026, 11, 1, tzinfo=UTC)
gc.collect()
gc.disable()
made = [len(chunk.sign_ins.rows) for chunk in chunks(300, 5, until, locator, ingestor)]
print(sum(made), gc.collect())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    events, garbage = map(int, done.stdout.split())
    assert events > 300
    assert garbage == 0


async def test_seeded_rollups_match_counts_from_the_raw_events(client, container):
    """The producer process summarises the rollups; what the dashboard reads afterwards must
    be what the stored events say, for all users and for a metadata query."""
    from tests.analytics.test_api import cells_of, expected_cells, get, raw_events

    settings = container.settings
    seeder = DemoSeeder(container.db, container.ingestor, settings.geoip)
    await seeder.seed(60, seed=3, until=datetime.now(UTC))
    admin = await make_admin(client, container)
    events = await raw_events(container)
    body = await get(client, admin, "heatmap", zoom=0)
    assert cells_of(body) == expected_cells(events, body["cell_deg"])

    listed = await client.get("/api/v1/users", headers=bearer(admin), params={"limit": 100})
    premium = {
        u["id"]
        for u in listed.json()["items"]
        if u["user_metadata"].get("subscription_tier") == "premium"
    }
    theirs = [e for e in events if e.subject in premium]
    body = await get(client, admin, "heatmap", zoom=2, q="user_metadata.subscription_tier:premium")
    assert theirs and len(theirs) < len(events)
    assert cells_of(body) == expected_cells(theirs, body["cell_deg"])
    top = await get(client, admin, "top-locations", level="city", limit=100)
    assert top["total"] == sum(1 for e in events if e.city_geoname_id)
