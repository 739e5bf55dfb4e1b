"""client_ip: X-Forwarded-For counts only when the peer is a trusted proxy, and then the
client is the rightmost address that is not one of ours."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from globeguard.kit.net import client_ip

NO_PROXIES: tuple = ()
PROXIES = (ip_network("10.0.0.0/8"), ip_network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        # peer not trusted: whatever the client wrote is ignored
        pytest.param("203.0.113.7", None, NO_PROXIES, "203.0.113.7", id="no-xff"),
        pytest.param(
            "203.0.113.7", "1.2.3.4", NO_PROXIES, "203.0.113.7", id="untrusted-peer-no-proxies"
        ),
        pytest.param(
            "203.0.113.7", "1.2.3.4", PROXIES, "203.0.113.7", id="untrusted-peer-outside-proxy-net"
        ),
        pytest.param(
            "203.0.113.7",
            "10.0.0.1",
            PROXIES,
            "203.0.113.7",
            id="untrusted-peer-claims-proxy-address",
        ),
        # trusted peer: rightmost untrusted hop
        pytest.param("10.0.0.1", "1.2.3.4", PROXIES, "1.2.3.4", id="one-hop"),
        pytest.param(
            "10.0.0.1", "6.6.6.6, 1.2.3.4", PROXIES, "1.2.3.4", id="spoofed-left-entry-ignored"
        ),
        pytest.param(
            "10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", PROXIES, "1.2.3.4", id="skips-own-proxies"
        ),
        pytest.param(
            "10.0.0.1",
            "6.6.6.6,1.2.3.4,10.0.0.2,10.9.9.9",
            PROXIES,
            "1.2.3.4",
            id="no-spaces-two-proxies",
        ),
        pytest.param("10.0.0.1", "  1.2.3.4  ,  10.0.0.2 ", PROXIES, "1.2.3.4", id="whitespace"),
        pytest.param(
            "10.0.0.1",
            "10.0.0.5, 10.0.0.6",
            PROXIES,
            "10.0.0.5",
            id="all-hops-trusted-leftmost-wins",
        ),
        pytest.param("10.0.0.1", "", PROXIES, "10.0.0.1", id="empty-xff"),
        # IPv6
        pytest.param("2001:db8::1", None, NO_PROXIES, "2001:db8::1", id="ipv6-peer"),
        pytest.param("2a00:1450::5", "1.2.3.4", PROXIES, "2a00:1450::5", id="ipv6-untrusted-peer"),
        pytest.param("2001:db8::1", "2a00:1450::5", PROXIES, "2a00:1450::5", id="ipv6-hop"),
        pytest.param(
            "2001:db8::1", "[2a00:1450::5]", PROXIES, "2a00:1450::5", id="ipv6-bracketed-hop"
        ),
        pytest.param(
            "2001:db8::1", "1.2.3.4, 2001:db8::99", PROXIES, "1.2.3.4", id="mixed-families"
        ),
        pytest.param("2001:DB8:0:0:0:0:0:1", None, NO_PROXIES, "2001:db8::1", id="ipv6-normalised"),
        # IPv4-mapped IPv6 is the IPv4 address
        pytest.param("::ffff:203.0.113.9", None, NO_PROXIES, "203.0.113.9", id="mapped-peer"),
        pytest.param("::ffff:10.0.0.1", "1.2.3.4", PROXIES, "1.2.3.4", id="mapped-peer-is-trusted"),
        pytest.param("10.0.0.1", "::ffff:1.2.3.4", PROXIES, "1.2.3.4", id="mapped-hop"),
        pytest.param(
            "10.0.0.1", "1.2.3.4, ::ffff:10.0.0.2", PROXIES, "1.2.3.4", id="mapped-hop-is-trusted"
        ),
        # garbage: never trusted, never returned
        pytest.param("10.0.0.1", "garbage", PROXIES, "10.0.0.1", id="garbage-xff"),
        pytest.param(
            "10.0.0.1",
            "1.2.3.4, garbage",
            PROXIES,
            "10.0.0.1",
            id="garbage-rightmost-stops-the-walk",
        ),
        pytest.param(
            "10.0.0.1", "garbage, 1.2.3.4", PROXIES, "1.2.3.4", id="garbage-left-of-client-unread"
        ),
        pytest.param(
            "10.0.0.1",
            "1.2.3.4, unknown, 10.0.0.2",
            PROXIES,
            "10.0.0.2",
            id="garbage-between-proxies",
        ),
        pytest.param("10.0.0.1", "999.1.1.1", PROXIES, "10.0.0.1", id="out-of-range"),
        pytest.param("10.0.0.1", "1.2.3.4:8080", PROXIES, "10.0.0.1", id="with-port"),
        pytest.param("10.0.0.1", ",,,", PROXIES, "10.0.0.1", id="only-commas"),
        pytest.param(
            "10.0.0.1", "1.2.3.4" + ", 10.0.0.2" * 200, PROXIES, "1.2.3.4", id="long-chain"
        ),
        # no usable peer
        pytest.param(None, "1.2.3.4", PROXIES, None, id="no-peer"),
        pytest.param("testclient", "1.2.3.4", PROXIES, None, id="peer-not-an-address"),
    ],
)
def test_client_ip(peer, forwarded_for, trusted, expected):
    assert client_ip(peer, forwarded_for, trusted) == expected
