"""Which Auth0 tenant the connector may call, and how it connects: the domain's form (pure),
then the SSRF guard on its addresses -- when a sync is submitted, and again on every
connection the sync makes (the guarded transport connects only to approved addresses).

A tenant domain is a plain host name (`acme.eu.auth0.com`, a custom domain), optionally
written `https://host`. Refused by form: paths, queries, user info, non-ASCII, and numbers
that resolvers read as IPv4 (`2130706433`, `0x7f000001`, `127.1`): a DNS name's last label
never starts with a digit. A port is refused too unless private targets are allowed: Auth0
serves the Management API on 443 only, so a port is only ever for a local mock, and
refusing it keeps the connector from being a port scanner of public hosts.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import urlsplit

import httpcore
import httpx

from globeguard.events.sinks.guard import NOT_ALLOWED, GuardedTransport, TargetGuard, UnsafeTarget
from globeguard.jobs.auth0.client import Auth0Error
from globeguard.kit.errors import Unprocessable
from globeguard.settings import Auth0Settings

log = logging.getLogger(__name__)
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Characters that may stand in an authority (host, brackets, colon, port) and nowhere else.
_AUTHORITY = re.compile(r"^[a-z0-9.:\[\]-]+$")
MAX_HOST_LENGTH = 253


class InvalidDomain(Auth0Error):
    """The tenant domain is not of an acceptable form; the message says which rule."""


def tenant_url(domain: str, *, allow_http: bool, allow_port: bool) -> str:
    """`https://<host>` for a tenant domain (`http://` only when allowed); raises
    InvalidDomain. Checks the form only: the guard decides about the addresses."""
    text = domain.strip().rstrip("/").lower()
    scheme, _, rest = text.rpartition("://")
    if scheme not in ("", "https", "http"):
        raise InvalidDomain("the tenant domain must be a host name such as acme.eu.auth0.com")
    if scheme == "http" and not allow_http:
        raise InvalidDomain("plain-http tenant URLs are refused (GLOBEGUARD_AUTH0__ALLOW_HTTP)")
    if not rest or not _AUTHORITY.match(rest):
        raise InvalidDomain(
            "the tenant domain must be a host name only: no path, query, user or spaces"
        )
    try:  # urlsplit refuses a bracketed host that is not IPv6, `.port` a bad number
        parts = urlsplit(f"{scheme or 'https'}://{rest}")
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        raise InvalidDomain("the tenant domain has an invalid host or port") from exc
    if port is not None and not allow_port:
        raise InvalidDomain(
            "the tenant domain must not name a port: Auth0 answers on 443 "
            "(ports are accepted with GLOBEGUARD_AUTH0__ALLOW_PRIVATE_TARGETS, for a mock)"
        )
    shown = _checked_host(host)
    return f"{scheme or 'https'}://{shown}" + (f":{port}" if port is not None else "")


def _checked_host(host: str) -> str:
    """The host as it goes into a URL (IPv6 in brackets)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # the canonical form only; the guard decides whether it may be used
        return f"[{address}]" if address.version == 6 else str(address)
    labels = host.split(".")
    if (
        len(host) > MAX_HOST_LENGTH
        or not all(_LABEL.match(label) for label in labels)
        or not labels[-1][0].isalpha()
    ):
        raise InvalidDomain("the tenant domain must be a host name such as acme.eu.auth0.com")
    return host


class TenantAddresses:
    """The connector's outbound policy: one guard (allowing private targets only when
    GLOBEGUARD_AUTH0__ALLOW_PRIVATE_TARGETS is set), shared by the check at submission and
    every connection of a sync. `network` replaces the sockets in tests."""

    def __init__(
        self,
        settings: Auth0Settings,
        *,
        guard: TargetGuard | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.settings = settings
        self.guard = guard or TargetGuard(settings.allow_private_targets)
        self.network = network

    def url(self, domain: str) -> str:
        """The tenant's base URL; InvalidDomain when the domain's form is refused."""
        return tenant_url(
            domain, allow_http=self.settings.allow_http, allow_port=self.guard.allow_private
        )

    async def approve(self, domain: str) -> str:
        """The tenant's base URL, once its form and its addresses are acceptable; a 422
        problem otherwise, which says nothing of what the name resolved to."""
        try:
            url = self.url(domain)
        except InvalidDomain as exc:
            raise Unprocessable(str(exc), code="invalid_auth0_domain") from exc
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            await self.guard.addresses(parts.hostname or "", port)
        except UnsafeTarget as exc:
            raise Unprocessable(NOT_ALLOWED, code="auth0_domain_not_allowed") from exc
        return url

    def transport(self) -> httpx.AsyncBaseTransport:
        return GuardedTransport(self.guard, network=self.network)
