"""`GET /metrics` in the Prometheus text format.

Closed by default: it needs a credential with `metrics:read`. Prometheus sends one with
`authorization: {credentials_file: …}`, i.e. `Authorization: Bearer ggk_…`, so an API key is
accepted in the Bearer slot here (and as X-API-KEY). Networks in
`GLOBEGUARD_METRICS__OPEN_NETWORKS` may scrape without one."""

from __future__ import annotations

from ipaddress import ip_address

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from globeguard.identity.api_keys.service import PREFIX as API_KEY_PREFIX
from globeguard.identity.dependencies import NOT_AUTHENTICATED, ApiKeyHeader, BearerToken
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.kit.errors import Unauthorized
from globeguard.kit.net import client_ip
from globeguard.wiring import Container

router = APIRouter(tags=["ops"])


def _from_open_network(request: Request, app: Container) -> bool:
    networks = app.settings.metrics.networks
    if not networks:
        return False
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), app.settings.http.trusted_networks)
    return ip is not None and any(ip_address(ip) in network for network in networks)


async def _scraper(app: Container, token: str | None, api_key: str | None) -> Principal:
    if token and token.startswith(API_KEY_PREFIX):
        return await app.authenticator.from_api_key(token)
    if token:
        return await app.authenticator.from_bearer(token)
    if api_key:
        return await app.authenticator.from_api_key(api_key)
    raise Unauthorized(NOT_AUTHENTICATED, code="not_authenticated")


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, token: BearerToken, api_key: ApiKeyHeader) -> Response:
    """Prometheus metrics: ingestion requests, delivery lag, dead deliveries, outbox age."""
    app: Container = request.app.state.container
    if not _from_open_network(request, app):
        (await _scraper(app, token, api_key)).require(Permission.METRICS_READ)
    return Response(await app.metrics.render(), media_type=CONTENT_TYPE_LATEST)
