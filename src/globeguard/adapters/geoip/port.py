"""The GeoLocator port: turn a client IP address into a place, or say why it cannot.

Every adapter answers with a :class:`GeoResult`. A result is either *located* (it has
coordinates) or carries one of these reasons, checked in this order:

``invalid``
    The text is not a single IP address: empty, ``1.2.3``, ``206.81.252.432``, IPv4 with
    leading zeros (``01.2.3.4``, ambiguous: octal to some parsers), an IPv6 zone id
    (``fe80::1%eth0``), a network (``1.2.3.0/24``), surrounding whitespace, or anything
    longer than the longest IP address text (45 characters).
``loopback``
    ``127.0.0.0/8`` and ``::1``.
``private``
    RFC 1918 networks (``10/8``, ``172.16/12``, ``192.168/16``) and IPv6 unique-local
    addresses (``fc00::/7``): someone's own LAN, meaningless to a public database.
``reserved``
    Every other address that is not globally routable unicast, so cannot be a client's
    public address: ``0/8`` and the unspecified ``::``, CGNAT shared space ``100.64/10``,
    link-local ``169.254/16`` and ``fe80::/10``, IETF protocol assignments ``192.0.0/24``
    and ``2001::/23`` (Teredo, benchmarking, ORCHID), documentation ``192.0.2/24``,
    ``198.51.100/24``, ``203.0.113/24``, ``2001:db8::/32`` and ``3fff::/20``, benchmarking
    ``198.18/15``, multicast ``224/4`` and ``ff00::/8``, ``240/4`` and the broadcast
    address, and all IPv6 space outside global unicast ``2000::/3`` (including NAT64
    ``64:ff9b::/96`` and the deprecated site-local ``fec0::/10``). This is a superset of
    what :mod:`ipaddress` calls non-global, fixed here so the answer does not change with
    the Python patch release (whose lists were revised in 3.11.10 and 3.12.4) and so it
    is a table lookup instead of a dozen ``in network`` tests per address.
``not_found``
    A public address the database has no record for.
``no_location``
    The database has a record (perhaps only a country) but no usable coordinates.

Results are returned, never raised, so a bulk lookup never fails as a whole; the caller
decides whether ``invalid`` is a 400 and the others a 422. An unlocatable address never
gets coordinates, in particular never (0, 0) ("Null Island").

IPv4-mapped IPv6 (``::ffff:8.8.8.8``) is normalised to the IPv4 address before anything
else, so it is classified and looked up exactly like ``8.8.8.8``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv6Address, ip_address, ip_network
from itertools import pairwise
from typing import Any, Protocol, runtime_checkable


class GeoReason(StrEnum):
    """Why a result has no location. A ``str``, so it compares equal to the plain code."""

    INVALID = "invalid"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    RESERVED = "reserved"
    NOT_FOUND = "not_found"
    NO_LOCATION = "no_location"


@dataclass(frozen=True, slots=True)
class GeoResult:
    """One address's place. Names are English. Immutable, so adapters may cache and share it.

    Only ``located`` results have ``latitude``/``longitude``. A ``no_location`` or
    ``not_found`` result may still carry what the database knew (country, ASN).
    ``accuracy_radius_km`` is None when the database has none (DB-IP Lite, for one).
    """

    # Normalised address text (compressed IPv6, IPv4-mapped unwrapped); for an invalid
    # address, the input unchanged.
    ip: str
    located: bool
    reason: GeoReason | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius_km: int | None = None
    country_iso: str | None = None
    country_name: str | None = None
    country_geoname_id: int | None = None
    subdivision_iso: str | None = None
    subdivision_name: str | None = None
    subdivision_geoname_id: int | None = None
    city_name: str | None = None
    city_geoname_id: int | None = None
    time_zone: str | None = None
    asn: int | None = None
    as_org: str | None = None

    @classmethod
    def unlocated(cls, ip: str, reason: GeoReason, **known: Any) -> GeoResult:
        return cls(ip=ip, located=False, reason=reason, **known)

    @property
    def coordinates(self) -> tuple[float, float] | None:
        """(latitude, longitude) when located; None otherwise, never (0, 0)."""
        if self.latitude is None or self.longitude is None:
            return None
        return (self.latitude, self.longitude)


@runtime_checkable
class GeoLocator(Protocol):
    """Look addresses up. Lookups are synchronous and take microseconds: call them directly
    from async code, no thread hop needed."""

    def locate(self, ip: str) -> GeoResult:
        """Locate one address; never raises for bad input (see ``GeoReason.INVALID``)."""
        ...

    def locate_many(self, ips: Iterable[str]) -> dict[str, GeoResult]:
        """Locate many addresses, each distinct one once. Keys are the inputs as given."""
        ...

    def describe(self) -> dict[str, Any]:
        """What is loaded: database type, build date (ISO), path. For /readyz and docs."""
        ...


class GeoDatabaseError(RuntimeError):
    """A configured database cannot be used. Raised at start-up so the process fails loudly
    instead of serving every login as unlocatable."""


# --- address normalisation and classification, shared by every adapter -----------------

# The longest IP text is "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255". Anything longer
# is rejected before any parsing work.
MAX_IP_TEXT = 45

# Strict dotted quad: no leading zeros, each octet 0-255, ASCII digits only. It accepts
# exactly what ipaddress.IPv4Address accepts, at a fraction of the cost, and a match is
# already the canonical text.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)


def normalise_ip(text: object) -> str | None:
    """Canonical text of one IP address, or None when ``text`` is not exactly one address.

    IPv4 is checked by a regex (the common case, ~0.3 µs); IPv6 goes through ipaddress,
    with zone ids refused (they name a local interface, not a host on the internet).
    """
    if not isinstance(text, str) or len(text) > MAX_IP_TEXT:
        return None
    if _IPV4.fullmatch(text):
        return text
    if ":" not in text:
        return None
    try:
        address = IPv6Address(text)
    except ValueError:
        return None
    if address.scope_id is not None:
        return None
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else str(address)


class _RangeTable:
    """Sorted, non-overlapping integer ranges, each with a reason; bisect to look up."""

    def __init__(self, ranges: Sequence[tuple[int, int, GeoReason]]) -> None:
        ordered = sorted(ranges)
        for (_, last, _), (first, _, _) in pairwise(ordered):
            if first <= last:
                raise ValueError("special-purpose address ranges overlap")
        self._firsts = [first for first, _, _ in ordered]
        self._lasts = [last for _, last, _ in ordered]
        self._reasons = [reason for _, _, reason in ordered]

    def get(self, value: int) -> GeoReason | None:
        index = bisect_right(self._firsts, value) - 1
        if index >= 0 and value <= self._lasts[index]:
            return self._reasons[index]
        return None


def _net(cidr: str, reason: GeoReason) -> tuple[int, int, GeoReason]:
    network = ip_network(cidr)
    return (int(network.network_address), int(network.broadcast_address), reason)


def _span(first: str, last: str, reason: GeoReason) -> tuple[int, int, GeoReason]:
    return (int(ip_address(first)), int(ip_address(last)), reason)


_LOOPBACK, _PRIVATE, _RESERVED = GeoReason.LOOPBACK, GeoReason.PRIVATE, GeoReason.RESERVED

_V4_SPECIAL = _RangeTable(
    [
        _net("0.0.0.0/8", _RESERVED),  # "this network", incl. the unspecified 0.0.0.0
        _net("10.0.0.0/8", _PRIVATE),
        _net("100.64.0.0/10", _RESERVED),  # CGNAT shared address space (RFC 6598)
        _net("127.0.0.0/8", _LOOPBACK),
        _net("169.254.0.0/16", _RESERVED),  # link-local
        _net("172.16.0.0/12", _PRIVATE),
        _net("192.0.0.0/24", _RESERVED),  # IETF protocol assignments
        _net("192.0.2.0/24", _RESERVED),  # TEST-NET-1
        _net("192.168.0.0/16", _PRIVATE),
        _net("198.18.0.0/15", _RESERVED),  # benchmarking
        _net("198.51.100.0/24", _RESERVED),  # TEST-NET-2
        _net("203.0.113.0/24", _RESERVED),  # TEST-NET-3
        _net("224.0.0.0/4", _RESERVED),  # multicast
        _net("240.0.0.0/4", _RESERVED),  # future use, and 255.255.255.255 broadcast
    ]
)

_V6_SPECIAL = _RangeTable(
    [
        _net("::/128", _RESERVED),  # unspecified
        _net("::1/128", _LOOPBACK),
        # Below global unicast 2000::/3: IPv4-compatible, NAT64, discard-only, unassigned.
        _span("::2", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", _RESERVED),
        _net("2001::/23", _RESERVED),  # IETF protocol assignments (Teredo, ORCHID, ...)
        _net("2001:db8::/32", _RESERVED),  # documentation
        _net("3fff::/20", _RESERVED),  # documentation (RFC 9637)
        _span("4000::", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", _RESERVED),  # unassigned
        _net("fc00::/7", _PRIVATE),  # unique local
        # Above: site-local (deprecated), link-local, multicast, unassigned.
        _span("fe00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", _RESERVED),
    ]
)


def classify_ip(normalised: str) -> GeoReason | None:
    """Reason a normalised address cannot be looked up, or None when it is public unicast."""
    if ":" in normalised:
        return _V6_SPECIAL.get(int(IPv6Address(normalised)))
    a, b, c, d = normalised.split(".")
    return _V4_SPECIAL.get((int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d))
