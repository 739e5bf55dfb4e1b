"""Start-up: zero-config boot, bootstrap admin from settings, idempotent restarts."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from globeguard.app import create_app
from tests.conftest import make_settings, wipe
from tests.helpers import STRONG, bearer


async def test_bootstrap_admin_from_settings_is_created_once(database_url, tmp_path):
    settings = make_settings(
        database_url,
        tmp_path,
        bootstrap={"admin_username": "ops", "admin_password": STRONG, "admin_email": "ops@x.io"},
    )
    for _ in range(2):  # a restart must neither fail nor duplicate
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                signed = await client.post(
                    "/api/v1/auth/signin", json={"username": "ops@x.io", "password": STRONG}
                )
                assert signed.status_code == 200
                assert sorted(signed.json()["user"]["roles"]) == ["admin", "user"]
                listed = await client.get("/api/v1/users", headers=bearer(signed.json()))
                assert [u["username"] for u in listed.json()["items"]] == ["ops"]
                ready = await client.get("/readyz")
                assert ready.json()["status"] == "ok"
                jwks = (await client.get("/.well-known/jwks.json")).json()["keys"]
                assert len(jwks) == 2  # current and next, not more after a restart
            container = app.state.container
    await wipe(container)
    await container.db.dispose()


async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(app, backend):
    if backend != "sqlite":
        pytest.skip("SQLite pragmas")
    async with app.state.container.db.read() as session:
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
