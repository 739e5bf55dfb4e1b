"""SSRF guard for every outbound target (webhooks, Auth0 tenants, the remote GeoIP provider):
a URL whose host is, or resolves to, a private, loopback, link-local, reserved or multicast
address is refused, unless the deployment allows them.

Checked when a target is saved or submitted and again before each connection (DNS may change
in between). Clients connect only to the addresses `addresses()` approved and never resolve
the name themselves -- the webhook client by its resolver hook, httpx clients through
`GuardedTransport` -- so a name that flips between two lookups (DNS rebinding with a zero
TTL) cannot slip a private address in. A refusal says only NOT_ALLOWED: whether a name did
not resolve or resolved to a private address would tell a caller about the internal network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

log = logging.getLogger(__name__)

# A resolved verdict is reused this long, so a busy subscription costs one lookup a minute.
VERDICT_TTL_S = 60.0
MAX_URL_LENGTH = 2048
NOT_ALLOWED = "target address is not allowed"


class UnsafeTarget(ValueError):
    """The URL is malformed or points somewhere we must not send to."""


_PARSED: dict[str, tuple[str, int]] = {}


def parse_url(url: str) -> tuple[str, int]:
    """(host, port) of an acceptable webhook URL; raises UnsafeTarget. Good answers are
    remembered: the dispatcher asks before every delivery."""
    parsed = _PARSED.get(url)
    if parsed is None:
        parsed = _parse_url(url)
        if len(_PARSED) >= 4096:
            _PARSED.clear()
        _PARSED[url] = parsed
    return parsed


def _parse_url(url: str) -> tuple[str, int]:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"URL longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("URL scheme must be http or https")
    if parts.username or parts.password:
        raise UnsafeTarget("URL must not carry credentials; use the signing secret")
    host = parts.hostname
    if not host:
        raise UnsafeTarget("URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget("URL has an invalid port") from exc
    return host, port


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class TargetGuard:
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        # (host, port) -> (when, the problem or None, the addresses)
        self._verdicts: dict[tuple[str, int], tuple[float, str | None, tuple[str, ...]]] = {}

    async def check(self, url: str) -> None:
        """Raises UnsafeTarget when the URL may not be used."""
        host, port = parse_url(url)
        if self.allow_private:
            return
        await self.addresses(host, port)

    async def addresses(self, host: str, port: int) -> tuple[str, ...]:
        """The addresses to connect to for `host`, every one of them allowed; raises
        UnsafeTarget when the name does not resolve or any address is not allowed. A verdict
        is reused for VERDICT_TTL_S."""
        cached = self._verdicts.get((host, port))
        if cached is not None and time.monotonic() - cached[0] < VERDICT_TTL_S:
            _, problem, found = cached
        else:
            problem, found = await self._resolve(host, port)
            self._verdicts[(host, port)] = (time.monotonic(), problem, found)
        if problem:
            raise UnsafeTarget(problem)
        return found

    async def _lookup(self, host: str, port: int) -> tuple[str, ...]:
        """The name's addresses, in the resolver's order; OSError when it has none."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return tuple(dict.fromkeys(str(info[4][0]) for info in infos))

    async def _resolve(self, host: str, port: int) -> tuple[str | None, tuple[str, ...]]:
        try:
            addresses = await self._lookup(host, port)
        except OSError as exc:
            log.debug("outbound target %s refused: it does not resolve (%s)", host, exc)
            return NOT_ALLOWED, ()
        if not addresses:
            log.debug("outbound target %s refused: no addresses", host)
            return NOT_ALLOWED, ()
        if self.allow_private:
            return None, addresses
        private = sorted(a for a in addresses if not is_public(a))
        if private:
            log.debug("outbound target %s refused: it resolves to %s", host, private[0])
            return NOT_ALLOWED, ()
        return None, addresses


class GuardedNetwork(httpcore.AsyncNetworkBackend):
    """httpcore's network layer for httpx clients: a connection to `host` goes to an address
    the guard approved for it, tried in the resolver's order. TLS still names `host` (httpcore
    passes the URL's host as the server name), so certificates are checked against it."""

    def __init__(
        self, guard: TargetGuard, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self.guard.addresses(host, port):
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(NOT_ALLOWED)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError(NOT_ALLOWED)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose connections go only to guard-approved addresses (see
    GuardedNetwork); a refused target raises UnsafeTarget out of the request. Passing a
    transport also keeps httpx from routing through proxies named in the environment."""

    def __init__(
        self,
        guard: TargetGuard,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        # httpx's own defaults (0.28): 100 connections, 20 kept alive for 5 s.
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=verify, limits=limits)
        # httpx (pinned) sends every request through `self._pool`; this one differs from
        # the one just built only in its network layer. tests/adapters/test_guarded_http.py
        # fails if a new httpx stops using it.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetwork(guard, network),
        )
