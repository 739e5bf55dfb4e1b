"""SSRF guard for webhook targets: a URL whose host is, or resolves to, a private, loopback,
link-local, reserved or multicast address is refused, unless the deployment allows them.

Checked when a subscription is saved and again before each delivery (DNS may change in
between). The webhook client connects only to the addresses `addresses()` approved (it never
resolves the name itself), so a name that flips between two lookups (DNS rebinding with a
zero TTL) cannot slip a private address in."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from urllib.parse import urlsplit

# A resolved verdict is reused this long, so a busy subscription costs one lookup a minute.
VERDICT_TTL_S = 60.0
MAX_URL_LENGTH = 2048


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

    async def _resolve(self, host: str, port: int) -> tuple[str | None, tuple[str, ...]]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            return f"cannot resolve {host}", ()
        addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            return f"cannot resolve {host}", ()
        if self.allow_private:
            return None, addresses
        private = sorted(a for a in addresses if not is_public(a))
        if private:
            return f"{host} resolves to a private or reserved address ({private[0]})", ()
        return None, addresses
