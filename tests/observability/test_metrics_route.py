"""`GET /metrics` is closed by default and opens to a credential with `metrics:read` or to a
configured network."""

from __future__ import annotations

import httpx
import pytest

from globeguard.app import create_app
from tests.conftest import make_settings, wipe
from tests.helpers import bearer, make_admin


async def key_with(client, admin, *scopes: str) -> str:
    response = await client.post(
        "/api/v1/api-keys", headers=bearer(admin), json={"name": "prom", "scopes": list(scopes)}
    )
    assert response.status_code == 201, response.text
    return response.json()["api_key"]


async def test_needs_a_credential_with_metrics_read(client, container):
    admin = await make_admin(client, container)
    assert (await client.get("/metrics")).status_code == 401
    wrong = await key_with(client, admin, "ingest")
    assert (await client.get("/metrics", headers={"X-API-KEY": wrong})).status_code == 403
    assert (
        await client.get("/metrics", headers={"Authorization": "Bearer ggk_x"})
    ).status_code == 401

    key = await key_with(client, admin, "metrics:read")
    for headers in ({"X-API-KEY": key}, {"Authorization": f"Bearer {key}"}, bearer(admin)):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert "# TYPE globeguard_delivery_lag_seconds gauge" in response.text


@pytest.mark.parametrize(
    ("open_networks", "peer", "status"),
    [
        (["127.0.0.1/32"], "127.0.0.1", 200),
        (["10.0.0.0/8"], "10.1.2.3", 200),
        (["10.0.0.0/8"], "203.0.113.7", 401),
        ([], "127.0.0.1", 401),  # loopback is not open by default
    ],
)
async def test_open_networks_scrape_without_a_credential(
    database_url, tmp_path, open_networks, peer, status
):
    settings = make_settings(database_url, tmp_path, metrics={"open_networks": open_networks})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            try:
                assert (await client.get("/metrics")).status_code == status
            finally:
                await wipe(app.state.container)


async def test_a_forwarded_address_counts_only_through_a_trusted_proxy(database_url, tmp_path):
    settings = make_settings(
        database_url,
        tmp_path,
        metrics={"open_networks": ["10.0.0.0/8"]},
        http={"trusted_proxies": ["127.0.0.1/32"]},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            try:
                inside = await client.get("/metrics", headers={"X-Forwarded-For": "10.9.9.9"})
                outside = await client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.1"})
                assert (inside.status_code, outside.status_code) == (200, 401)
            finally:
                await wipe(app.state.container)
