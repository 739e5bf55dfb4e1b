"""httpx clients through the SSRF guard (GuardedTransport): private targets are refused before
any connection, a connection goes only to the address the guard approved (DNS rebinding
cannot swap it), and TLS still verifies the certificate against the URL's host name."""

from __future__ import annotations

import httpx
import pytest

from globeguard.events.sinks import guard as guard_module
from globeguard.events.sinks.guard import NOT_ALLOWED, GuardedTransport, TargetGuard, UnsafeTarget
from tests.adapters.outbound_support import (
    PUBLIC,
    Listener,
    RecordingNetwork,
    ScriptedGuard,
    certificates,
)

# Ways to write loopback that resolvers accept: literal, name, IPv6, IPv4-mapped IPv6, and
# the decimal, hexadecimal and shortened forms inet_aton reads as 127.0.0.1.
LOOPBACK_HOSTS = [
    "127.0.0.1",
    "localhost",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "2130706433",
    "0x7f000001",
    "127.1",
]


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
async def test_loopback_is_refused_without_a_connection(host):
    async with Listener() as listener:
        transport = GuardedTransport(TargetGuard(allow_private=False))
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(UnsafeTarget) as refused:
                await http.get(f"http://{host}:{listener.port}/")
    assert str(refused.value) == NOT_ALLOWED  # no address, no "resolves to"
    assert listener.accepted == 0


async def test_with_private_targets_allowed_loopback_is_reached():
    async with Listener() as listener:
        transport = GuardedTransport(TargetGuard(allow_private=True))
        async with httpx.AsyncClient(transport=transport) as http:
            response = await http.get(f"http://localhost:{listener.port}/")
    assert response.status_code == 200 and listener.accepted == 1


async def test_the_connection_goes_to_the_address_the_guard_approved():
    """The system resolves `localhost` to loopback; the guard's answer (a public address) is
    the one connected to -- a client resolving on its own would hit the listener directly."""
    guard = ScriptedGuard(False, lambda host, n: [PUBLIC] if host == "localhost" else [])
    async with Listener() as listener:
        network = RecordingNetwork(route_to=listener.port)
        transport = GuardedTransport(guard, network=network)
        async with httpx.AsyncClient(transport=transport) as http:
            response = await http.get(f"http://localhost:{listener.port}/path")
    assert response.status_code == 200
    assert network.opened == [(PUBLIC, listener.port)]
    # Host stays the URL's name: the request is for it, only the socket is pinned.
    assert f"host: localhost:{listener.port}".encode() in listener.heads[0].lower()


async def test_dns_rebinding_cannot_reach_loopback(monkeypatch):
    """Public at the first lookup, loopback at every later one, with no caching of the
    verdict: the second connection is refused instead of going to loopback."""
    monkeypatch.setattr(guard_module, "VERDICT_TTL_S", 0.0)
    guard = ScriptedGuard(False, lambda host, n: [PUBLIC] if n == 1 else ["127.0.0.1"])
    async with Listener() as listener:
        network = RecordingNetwork(route_to=listener.port)
        # No kept-alive connections: each request opens (and resolves) anew.
        limits = httpx.Limits(max_keepalive_connections=0)
        transport = GuardedTransport(guard, network=network, limits=limits)
        async with httpx.AsyncClient(transport=transport) as http:
            first = await http.get(f"http://rebind.test:{listener.port}/")
            with pytest.raises(UnsafeTarget):
                await http.get(f"http://rebind.test:{listener.port}/")
    assert first.status_code == 200
    assert network.opened == [(PUBLIC, listener.port)]
    assert guard.lookups == {"rebind.test": 2}


async def test_tls_names_the_host_not_the_pinned_address():
    certs = certificates("tenant.example.test")
    names = {"tenant.example.test", "other.example.test"}
    guard = ScriptedGuard(True, lambda host, n: ["127.0.0.1"] if host in names else [])
    async with Listener(ssl_context=certs.server) as listener:
        transport = GuardedTransport(guard, verify=certs.client)
        async with httpx.AsyncClient(transport=transport) as http:
            good = await http.get(f"https://tenant.example.test:{listener.port}/")
            # Same address, a name the certificate does not carry: verification fails.
            with pytest.raises(httpx.ConnectError):
                await http.get(f"https://other.example.test:{listener.port}/")
    assert good.status_code == 200
    assert f"host: tenant.example.test:{listener.port}".encode() in listener.heads[0].lower()
