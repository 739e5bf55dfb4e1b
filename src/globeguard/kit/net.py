"""The client's address, trusting X-Forwarded-For only from configured proxies."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

Network = IPv4Network | IPv6Network


def _parse(value: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPv4Address | IPv6Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """Walk X-Forwarded-For from the right, skipping our own proxies: the first address not
    ours is the client. Entries left of it were written by the client and are not trusted."""
    address = _parse(peer) if peer else None
    if address is None:
        return None
    if not forwarded_for or not _trusted(address, trusted):
        return str(address)
    for hop in reversed(forwarded_for.split(",")):
        hop_address = _parse(hop)
        if hop_address is None:
            break
        address = hop_address
        if not _trusted(address, trusted):
            break
    return str(address)


def trusted_peer(peer: str, trusted: Sequence[Network]) -> bool:
    """The directly connected peer is one of our proxies."""
    if not trusted:  # the default: nothing to parse the address for
        return False
    address = _parse(peer)
    return address is not None and _trusted(address, trusted)
