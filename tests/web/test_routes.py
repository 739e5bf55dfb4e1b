"""The dashboard's routes: the page, its one setting, and a clear answer when it was never
built."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from globeguard.app import create_app, install_error_handlers
from globeguard.web.routes import DIST, install_dashboard
from tests.conftest import make_settings


async def test_dashboard_redirects_and_serves_its_config(client):
    root = await client.get("/dashboard")
    assert root.status_code == 308 and root.headers["location"] == "/dashboard/"
    config = await client.get("/dashboard/config.json")
    assert config.json() == {"tile_url": None, "tile_attribution": ""}


@pytest.mark.skipif(not (DIST / "index.html").is_file(), reason="dashboard not built")
async def test_the_built_page_is_served(client):
    page = await client.get("/dashboard/")
    assert page.status_code == 200 and '<div id="root">' in page.text
    asset = page.text.split('src="', 1)[1].split('"', 1)[0]
    assert (await client.get(asset)).status_code == 200


async def test_a_tile_server_is_passed_to_the_page(database_url, tmp_path):
    url = "https://tiles.example/{z}/{x}/{y}.png"
    settings = make_settings(
        database_url, tmp_path, dashboard={"tile_url": url, "tile_attribution": "© Example"}
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        body = (await http.get("/dashboard/config.json")).json()
    assert body == {"tile_url": url, "tile_attribution": "© Example"}
    await app.state.container.db.dispose()


async def test_an_unbuilt_dashboard_answers_503_saying_how_to_build_it(tmp_path, container):
    app = FastAPI()
    app.state.container = container
    install_error_handlers(app)
    install_dashboard(app, dist=tmp_path / "missing")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/dashboard/")
    assert response.status_code == 503
    assert response.json()["code"] == "dashboard_not_built"
    assert "make ui" in response.json()["detail"]
