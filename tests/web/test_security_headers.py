"""Security headers on every answer: JSON, problems, the dashboard and the API docs; no caching
of anything that carries a token or a secret; HSTS only over HTTPS; a docs page that runs no
inline script and loads nothing from another origin."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from globeguard import security_headers
from globeguard.app import create_app, install_error_handlers
from globeguard.security_headers import SecurityHeaders, image_source
from globeguard.web.docs import DOCS_ASSETS, install_docs
from globeguard.web.routes import DIST
from tests.conftest import make_settings
from tests.helpers import STRONG, bearer, make_admin, signup

COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
dashboard_built = pytest.mark.skipif(
    not (DIST / "index.html").is_file(), reason="dashboard not built (make ui)"
)
docs_built = pytest.mark.skipif(
    not (DOCS_ASSETS / "swagger-ui-bundle.js").is_file(), reason="docs not built (make ui)"
)


def assert_common(response: httpx.Response) -> None:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (response.url, name)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def assert_no_store(response: httpx.Response) -> None:
    assert response.headers.get("cache-control") == "no-store", response.url
    assert response.headers.get("pragma") == "no-cache", response.url


def page_csp(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


def assert_strict_page_csp(response: httpx.Response) -> None:
    csp = page_csp(response)
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert all("unsafe" not in value for values in csp.values() for value in values)


@pytest.fixture
def settings(database_url, tmp_path):
    """Webhook targets on loopback allowed: a subscription is created, never delivered to."""
    delivery = {"embedded": False, "allow_private_targets": True}
    return make_settings(database_url, tmp_path, delivery=delivery)


# --- every kind of answer ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/healthz", {}, 200),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/.well-known/jwks.json", {}, 200),
        ("GET", "/no/such/route", {}, 404),
        ("GET", "/api/v1/users/me", {}, 401),
        ("POST", "/api/v1/auth/signin", {"json": {"username": "x"}}, 422),
        ("DELETE", "/healthz", {}, 405),
    ],
)
async def test_api_answers_and_problems_carry_the_headers(client, method, path, kwargs, status):
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status
    assert_common(response)
    assert response.headers["content-security-policy"].startswith(API_CSP)
    assert_no_store(response)
    assert "strict-transport-security" not in response.headers  # plain HTTP


@dashboard_built
async def test_the_dashboard_has_a_strict_policy(client):
    page = await client.get("/dashboard/")
    assert page.status_code == 200
    assert_common(page)
    assert_strict_page_csp(page)
    assert page_csp(page)["connect-src"] == ["'self'"]
    assert_no_store(page)
    scripts = ScriptTags.of(page.text)
    assert scripts.inline == 0 and scripts.sources and scripts.handlers == 0
    assert all(src.startswith("/dashboard/") for src in scripts.sources)
    asset = await client.get(scripts.sources[0])
    assert asset.status_code == 200
    assert "no-store" not in asset.headers.get("cache-control", "")  # hashed files may be cached
    assert_common(asset)


async def test_a_configured_tile_server_is_the_only_other_image_origin(database_url, tmp_path):
    url = "https://{s}.tile.example.org/{z}/{x}/{y}.png"
    settings = make_settings(database_url, tmp_path, dashboard={"tile_url": url})
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        config = await http.get("/dashboard/config.json")
    await app.state.container.db.dispose()
    csp = page_csp(config)
    assert csp["img-src"] == ["'self'", "data:", "https://*.tile.example.org"]
    assert csp["script-src"] == ["'self'"]


@pytest.mark.parametrize(
    ("tile_url", "source"),
    [
        (None, None),
        ("", None),
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
        ("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png", "https://*.tile.openstreetmap.org"),
        ("http://tiles.local:8080/{z}/{x}/{y}.png", "http://tiles.local:8080"),
        ("https://a.{s}.example/{z}/{x}/{y}.png", "https:"),
        ("javascript:alert(1)//{z}", None),
        ("/relative/{z}/{x}/{y}.png", None),
    ],
)
def test_image_source_of_a_tile_url(tile_url, source):
    assert image_source(tile_url) == source


# --- the API docs -----------------------------------------------------------------------------


class ScriptTags(HTMLParser):
    """Counts inline scripts and inline event handlers; collects script and stylesheet URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.styles: list[str] = []
        self.inline = 0
        self.handlers = 0
        self._in_script = False

    @classmethod
    def of(cls, html: str) -> ScriptTags:
        parser = cls()
        parser.feed(html)
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.handlers += sum(1 for name, _ in attrs if name.startswith("on"))
        if tag == "script":
            if values.get("src"):
                self.sources.append(values["src"] or "")
            else:
                self._in_script = True
        if tag == "link" and values.get("rel") == "stylesheet":
            self.styles.append(values.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline += 1


def _same_origin(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


@docs_built
async def test_the_docs_page_runs_only_same_origin_script_files(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert_common(page)
    assert_strict_page_csp(page)
    tags = ScriptTags.of(page.text)
    assert tags.inline == 0 and tags.handlers == 0
    assert tags.sources and all(_same_origin(src) for src in tags.sources)
    assert tags.styles and all(_same_origin(href) for href in tags.styles)
    assert "http" not in page.text  # no absolute URL: nothing from a CDN
    for url in tags.sources + tags.styles:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert "cdn" not in asset.text[:2000].lower()
        assert_common(asset)
    init = await client.get(tags.sources[-1])
    assert "SwaggerUIBundle(" in init.text and "validatorUrl: null" in init.text


async def test_the_cdn_pages_fastapi_would_serve_are_gone(client):
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/docs/oauth2-redirect")).status_code == 404


async def test_the_openapi_document_still_offers_both_ways_to_authorize(client):
    schemes = (await client.get("/openapi.json")).json()["components"]["securitySchemes"]
    kinds = {scheme["type"] for scheme in schemes.values()}
    assert kinds == {"oauth2", "apiKey"}
    oauth = next(s for s in schemes.values() if s["type"] == "oauth2")
    assert oauth["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"


async def test_unbuilt_docs_answer_503_saying_how_to_build_them(tmp_path):
    app = FastAPI(docs_url=None, redoc_url=None)
    install_error_handlers(app)
    install_docs(app, assets=tmp_path / "missing")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/docs")
    assert response.status_code == 503
    assert response.json()["code"] == "docs_not_built"
    assert "make ui" in response.json()["detail"]


# --- no caching of tokens and secrets -----------------------------------------------------------


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def _secret_bearing_responses(client, container) -> dict[str, httpx.Response]:
    """One of each answer that carries a token or a secret, keyed by what it is."""
    answers: dict[str, httpx.Response] = {}
    answers["signup"] = await client.post(
        "/api/v1/auth/signup", json={"username": "irulan", "password": STRONG}
    )
    answers["signin"] = await client.post(
        "/api/v1/auth/signin", json={"username": "irulan", "password": STRONG}
    )
    session: dict[str, Any] = answers["signin"].json()
    answers["refresh"] = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    rotated = answers["refresh"].json()
    answers["token: password"] = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "irulan", "password": STRONG},
    )
    answers["token: refresh_token"] = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    admin = bearer(await make_admin(client, container))
    answers["api key"] = await client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "ci", "scopes": ["users:read"]}
    )
    answers["client"] = await client.post(
        "/api/v1/clients", headers=admin, json={"name": "reporting", "scopes": ["users:read"]}
    )
    machine = answers["client"].json()
    creds = _basic(machine["client_id"], machine["client_secret"])
    answers["token: client_credentials"] = await client.post(
        "/api/v1/auth/token", data={"grant_type": "client_credentials"}, headers=creds
    )
    answers["introspection"] = await client.post(
        "/api/v1/auth/introspect", data={"token": session["access_token"]}, headers=creds
    )
    answers["subscription"] = await client.post(
        "/api/v1/subscriptions",
        headers=admin,
        json={"name": "crm", "target": "http://127.0.0.1:9/hook"},
    )
    subscription = answers["subscription"].json()
    answers["subscription secret"] = await client.post(
        f"/api/v1/subscriptions/{subscription['id']}/secrets", headers=admin, json={}
    )
    answers["failed sign-in"] = await client.post(
        "/api/v1/auth/signin", json={"username": "irulan", "password": "wrong-" + STRONG}
    )
    return answers


async def test_no_answer_that_carries_a_token_or_secret_may_be_cached(client, container):
    answers = await _secret_bearing_responses(client, container)
    expected = {"signup": 201, "api key": 201, "client": 201, "subscription": 201}
    expected |= {"subscription secret": 201, "failed sign-in": 401}
    for what, response in answers.items():
        assert response.status_code == expected.get(what, 200), (what, response.text)
        assert_no_store(response)
        assert_common(response)


async def test_personal_data_is_not_cached_either(client):
    tokens = await signup(client, "alia")
    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert_no_store(me)  # personal data too


# --- the middleware itself --------------------------------------------------------------------


def _bare_app(trusted: list[Any] | None = None) -> FastAPI:
    from ipaddress import ip_network

    app = FastAPI()

    @app.get("/cacheable")
    async def cacheable() -> JSONResponse:
        return JSONResponse({}, headers={"Cache-Control": "public, max-age=60"})

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {}

    networks = [ip_network(n) for n in (trusted or [])]
    app.add_middleware(SecurityHeaders, trusted_proxies=networks)
    return app


async def _get(app: FastAPI, url: str, peer: str = "198.51.100.4", **headers: str):
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport) as http:
        return await http.get(url, headers=headers)


async def test_a_route_may_set_its_own_cache_policy():
    response = await _get(_bare_app(), "http://t/cacheable")
    assert response.headers["cache-control"] == "public, max-age=60"
    assert "pragma" not in response.headers
    assert_common(response)


@pytest.mark.parametrize(
    ("url", "peer", "proto", "hsts"),
    [
        ("http://t/plain", "198.51.100.4", None, False),
        ("https://t/plain", "198.51.100.4", None, True),  # TLS ends at us
        ("http://t/plain", "10.0.0.2", "https", True),  # our proxy ended TLS
        ("http://t/plain", "10.0.0.2", "https, http", True),  # its client side counts
        ("http://t/plain", "10.0.0.2", "http", False),
        ("http://t/plain", "198.51.100.4", "https", False),  # anyone else may not say so
    ],
)
async def test_hsts_only_over_https(url, peer, proto, hsts):
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    response = await _get(_bare_app(["10.0.0.0/8"]), url, peer, **headers)
    assert ("strict-transport-security" in response.headers) is hsts
    if hsts:
        assert response.headers["strict-transport-security"] == "max-age=31536000"


@pytest.mark.parametrize(
    ("path", "page", "static"),
    [
        ("/dashboard", True, False),
        ("/dashboard/", True, False),
        ("/dashboard/users", True, False),
        ("/dashboardx", False, False),
        ("/docs", True, False),
        ("/docs.json", False, False),
        ("/docs/assets/swagger.js", True, True),
        ("/dashboard/assets", True, True),
        ("/dashboard/assetsx", True, False),
        ("/api/v1/docs", False, False),
        ("/", False, False),
    ],
)
def test_pages_and_static_files_are_told_by_whole_path_segments(path, page, static):
    assert security_headers._is_page(path) is page
    assert security_headers._is_static(path) is static
