"""Seeding demo data through the bulk paths: the sign-ins belong to their users."""

from __future__ import annotations

from datetime import UTC, datetime

from globeguard.demo.service import DemoSeeder
from tests.helpers import bearer, make_admin


async def test_seeded_sign_ins_are_in_each_users_history(client, container):
    settings = container.settings
    seeder = DemoSeeder(container.db, container.ingestor, settings.geoip, settings.travel)
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
