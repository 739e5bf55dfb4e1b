"""The GeoLocator contract, run against every adapter and database we ship or support.

Each case pairs a locator with the facts its database is known to hold: the bundled GeoLite2
file (facts re-derived in the Superman survey) and a synthetic City database written by
tests/support/mmdb.py. Address semantics that do not depend on the data (invalid, private,
loopback, reserved) must come out the same from every case.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.adapters.geoip import GeoLocator, GeoReason, GeoResult, MaxMindLocator
from globeguard.adapters.geoip.port import classify_ip, normalise_ip
from tests.support.mmdb import city_record, superman_seed_records, write_city_db


@dataclass(frozen=True)
class Place:
    latitude: float
    longitude: float
    radius: int | None
    country: str
    city: str | None = None


@dataclass
class Case:
    locator: GeoLocator
    located: dict[str, Place]  # IPv4 and IPv6 addresses with known places
    not_found: list[str]
    no_location: list[str]
    extra_invalid_zero: list[str] = field(default_factory=list)


def _bundled() -> Iterator[Case]:
    locator = MaxMindLocator(None, None, cache_size=1000, reload_check_interval_s=3600)
    halethorpe = Place(39.2293, -76.6907, 20, "US", "Halethorpe")
    yield Case(
        locator=locator,
        located={
            "206.81.252.6": halethorpe,
            "206.81.252.7": halethorpe,
            "206.81.252.200": halethorpe,
            "24.242.71.20": Place(30.4293, -97.7207, 5, "US", "Austin"),
            "91.207.175.104": Place(34.0549, -118.2578, 200, "US", "Los Angeles"),
            "42.222.21.19": Place(34.7725, 113.7266, 50, "CN"),
            "8.8.8.8": Place(37.751, -97.822, 1000, "US"),
            "2a00:1450:4001:81c::200e": Place(50.1188, 8.6843, 100, "DE", "Frankfurt am Main"),
        },
        not_found=["102.197.240.192", "2c0f:ffff::1"],
        no_location=["23.128.130.1"],
    )
    locator.close()


def _synthetic(directory: Path) -> Iterator[Case]:
    austin = city_record(30.2672, -97.7431, radius=10, country="US", city=("Austin", 4671654))
    records = {
        **superman_seed_records(),
        "24.242.71.0/24": austin,
        "8.8.8.0/24": city_record(37.751, -97.822, radius=1000, country="US"),
        "2a00:1450:4001::/48": city_record(
            50.1109, 8.6821, radius=50, country="DE", city=("Frankfurt am Main", 2925533)
        ),
        "23.128.130.0/24": city_record(country="US"),  # a record without location
        "51.15.0.0/16": city_record(0.0, 0.0, radius=1000, country="FR"),  # Null Island filler
        "45.0.0.0/8": city_record(latitude=48.0, country="FR"),  # latitude only
        "51.16.0.0/16": city_record(48.8566, 2.3522, country="FR"),  # no radius, like DB-IP
    }
    path = write_city_db(directory / "city.mmdb", records)
    locator = MaxMindLocator(path, None, cache_size=1000, reload_check_interval_s=3600)
    washington = Place(38.9206, -76.8787, 1000, "US")
    yield Case(
        locator=locator,
        located={
            "206.81.252.7": washington,
            "206.81.252.200": washington,
            "42.222.21.19": Place(34.7725, 113.7266, 50, "CN", "Zhengzhou"),
            "24.242.71.20": Place(30.2672, -97.7431, 10, "US", "Austin"),
            "8.8.8.8": Place(37.751, -97.822, 1000, "US"),
            "2a00:1450:4001:81c::200e": Place(50.1109, 8.6821, 50, "DE", "Frankfurt am Main"),
            "51.16.3.4": Place(48.8566, 2.3522, None, "FR"),
        },
        not_found=["206.81.252.6", "1.1.1.1", "2606:4700::1111"],
        no_location=["23.128.130.1", "51.15.1.1", "45.1.2.3"],
    )
    locator.close()


@pytest.fixture(scope="module", params=["geolite2-bundled", "synthetic-city"])
def case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Case]:
    if request.param == "geolite2-bundled":
        yield from _bundled()
    else:
        yield from _synthetic(tmp_path_factory.mktemp("geo"))


PRIVATE = ["10.0.0.1", "192.168.1.1", "172.16.0.1", "172.31.255.255", "fd00::1", "fc00::1"]
LOOPBACK = ["127.0.0.1", "127.255.255.254", "::1"]
RESERVED = [
    "100.64.0.1",  # CGNAT
    "169.254.1.1",  # link-local
    "fe80::1",
    "224.0.0.1",  # multicast
    "ff02::1",
    "ff0e::1",  # global-scope multicast: still not a client address
    "192.0.2.1",  # documentation
    "198.51.100.7",
    "203.0.113.9",
    "2001:db8::1",
    "3fff::1",
    "0.0.0.0",  # noqa: S104  # unspecified, not a bind address here
    "::",
    "255.255.255.255",
    "240.0.0.1",
    "198.18.0.1",  # benchmarking
    "192.0.0.9",
    "2001::1",  # Teredo
    "64:ff9b::808:808",  # NAT64
    "fec0::1",  # site-local (deprecated)
    "100::1",  # discard-only
    "4000::1",  # unassigned, outside 2000::/3
]
INVALID = [
    "206.81.252.432",
    "",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",  # leading zeros: octal to inet_aton
    "1.2.3.04",
    "0x1.2.3.4",
    "fe80::1%eth0",  # zone id
    "1.2.3.0/24",  # a network
    "2001:db8::/32",
    " 1.2.3.4",
    "1.2.3.4\n",
    "[::1]",
    "::ffff:01.2.3.4",
    "1:2:3:4:5:6:7:8:9",
    "\u0661.\u0662.\u0663.\u0664",  # Arabic-Indic digits
    "localhost",
    "8.8.8.8" + "0" * 5000,
    "x" * 100_000,
]


def _assert_never_null_island(result: GeoResult) -> None:
    assert result.coordinates != (0.0, 0.0)
    if not result.located:
        assert result.latitude is None and result.longitude is None
        assert result.coordinates is None
        assert result.accuracy_radius_km is None


def test_satisfies_the_protocol(case: Case) -> None:
    assert isinstance(case.locator, GeoLocator)


def test_known_addresses_are_located(case: Case) -> None:
    for ip, place in case.located.items():
        result = case.locator.locate(ip)
        assert result.located, (ip, result)
        assert result.reason is None
        assert result.ip == ip
        assert result.coordinates == pytest.approx((place.latitude, place.longitude), abs=1e-4)
        assert result.accuracy_radius_km == place.radius
        assert result.country_iso == place.country
        assert result.country_name and result.country_geoname_id
        assert result.city_name == place.city


def test_superman_facts_from_bundled_geolite2() -> None:
    """The survey's reference numbers, independent of the parametrised fixture."""
    locator = MaxMindLocator(None, None, cache_size=0, reload_check_interval_s=3600)
    try:
        austin = locator.locate("24.242.71.20")
        assert (austin.latitude, austin.longitude, austin.accuracy_radius_km) == (
            30.4293,
            -97.7207,
            5,
        )
        assert austin.subdivision_iso == "TX" and austin.subdivision_name == "Texas"
        assert austin.time_zone == "America/Chicago"
        assert austin.city_geoname_id == 4671654
        assert austin.asn is None and austin.as_org is None  # no ASN database configured
    finally:
        locator.close()


def test_ipv6_global_address_is_located(case: Case) -> None:
    result = case.locator.locate("2A00:1450:4001:081C:0000:0000:0000:200E")
    assert result.located
    assert result.ip == "2a00:1450:4001:81c::200e"  # compressed, lower case


@pytest.mark.parametrize(
    ("mapped", "plain"),
    [("::ffff:8.8.8.8", "8.8.8.8"), ("::FFFF:42.222.21.19", "42.222.21.19")],
)
def test_ipv4_mapped_resolves_like_ipv4(case: Case, mapped: str, plain: str) -> None:
    result = case.locator.locate(mapped)
    assert result == case.locator.locate(plain)
    assert result.ip == plain
    assert result.located


@pytest.mark.parametrize("ip", PRIVATE)
def test_private_addresses(case: Case, ip: str) -> None:
    result = case.locator.locate(ip)
    assert (result.located, result.reason, result.ip) == (False, GeoReason.PRIVATE, ip)
    _assert_never_null_island(result)


@pytest.mark.parametrize("ip", LOOPBACK)
def test_loopback_addresses(case: Case, ip: str) -> None:
    result = case.locator.locate(ip)
    assert (result.located, result.reason) == (False, GeoReason.LOOPBACK)
    _assert_never_null_island(result)


@pytest.mark.parametrize("ip", RESERVED)
def test_reserved_addresses(case: Case, ip: str) -> None:
    result = case.locator.locate(ip)
    assert (result.located, result.reason) == (False, "reserved")
    _assert_never_null_island(result)


@pytest.mark.parametrize(
    ("mapped", "reason", "plain"),
    [
        ("::ffff:10.0.0.1", GeoReason.PRIVATE, "10.0.0.1"),
        ("::ffff:127.0.0.1", GeoReason.LOOPBACK, "127.0.0.1"),
        ("::ffff:100.64.0.1", GeoReason.RESERVED, "100.64.0.1"),
    ],
)
def test_ipv4_mapped_special_addresses(
    case: Case, mapped: str, reason: GeoReason, plain: str
) -> None:
    result = case.locator.locate(mapped)
    assert (result.reason, result.ip) == (reason, plain)


@pytest.mark.parametrize("text", INVALID, ids=lambda text: repr(text)[:24])
def test_invalid_text_is_a_result_not_an_exception(case: Case, text: str) -> None:
    result = case.locator.locate(text)
    assert (result.located, result.reason, result.ip) == (False, GeoReason.INVALID, text)
    _assert_never_null_island(result)


def test_global_address_not_in_database(case: Case) -> None:
    for ip in case.not_found:
        result = case.locator.locate(ip)
        assert (result.located, result.reason) == (False, GeoReason.NOT_FOUND), ip
        _assert_never_null_island(result)


def test_record_without_coordinates(case: Case) -> None:
    for ip in case.no_location:
        result = case.locator.locate(ip)
        assert (result.located, result.reason) == (False, GeoReason.NO_LOCATION), ip
        _assert_never_null_island(result)


def test_no_location_keeps_country_when_the_record_has_one() -> None:
    """GeoLite2 has only registered_country for 23.128.130.1: that is where the ISP
    registered, not where the user is, so no country is reported."""
    locator = MaxMindLocator(None, None, cache_size=0, reload_check_interval_s=3600)
    try:
        assert locator.locate("23.128.130.1").country_iso is None
    finally:
        locator.close()


def test_never_null_island_for_anything(case: Case) -> None:
    everything = [
        *case.located,
        *case.not_found,
        *case.no_location,
        *PRIVATE,
        *LOOPBACK,
        *RESERVED,
        *INVALID,
    ]
    for result in case.locator.locate_many(everything).values():
        _assert_never_null_island(result)


def test_locate_many_equals_single_lookups_and_dedupes(case: Case) -> None:
    ips = [
        *case.located,
        "::ffff:8.8.8.8",
        "8.8.8.8",
        "8.8.8.8",
        *case.not_found,
        *case.no_location,
        "10.0.0.1",
        "::1",
        "not an ip",
        "not an ip",
        "",
    ]
    results = case.locator.locate_many(iter(ips))  # any iterable, consumed once
    assert list(results) == list(dict.fromkeys(ips))
    for ip, result in results.items():
        assert result == case.locator.locate(ip), ip
    assert results["::ffff:8.8.8.8"] == results["8.8.8.8"]


def test_locate_many_of_nothing(case: Case) -> None:
    assert case.locator.locate_many([]) == {}


def test_results_are_immutable(case: Case) -> None:
    result = case.locator.locate("8.8.8.8")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.latitude = 0.0  # type: ignore[misc]
    assert hash(result) == hash(case.locator.locate("8.8.8.8"))


def test_describe(case: Case) -> None:
    info = case.locator.describe()
    assert info["database_type"].endswith("City")
    date.fromisoformat(info["build_date"])
    assert Path(info["path"]).is_file()


def test_bundled_database_is_the_2019_geolite2() -> None:
    locator = MaxMindLocator(None, None, cache_size=0, reload_check_interval_s=3600)
    try:
        info = locator.describe()
    finally:
        locator.close()
    assert info["database_type"] == "GeoLite2-City"
    assert info["build_date"] == "2019-12-24"
    assert info["bundled"] is True
    assert info["asn"] is None


# --- address semantics shared by all adapters (no database needed) ----------------------


def _ipaddress_normalised(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
    return str(address)


@given(st.text(alphabet="0123456789abcdefABCDEF.:%/x ", max_size=48))
def test_normalise_agrees_with_ipaddress_on_arbitrary_text(text: str) -> None:
    assert normalise_ip(text) == _ipaddress_normalised(text)


@given(st.integers(0, 2**32 - 1))
def test_normalise_accepts_every_ipv4_address(value: int) -> None:
    text = str(ipaddress.IPv4Address(value))
    assert normalise_ip(text) == text
    assert normalise_ip(f"::ffff:{text}") == text


def _special_boundaries() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """First and last address of every network ipaddress treats as special, and the
    addresses either side of it."""
    samples: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for cidr in [
        *["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16"],
        *["172.16.0.0/12", "192.0.0.0/29", "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16"],
        *["198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"],
        *["::/128", "::1/128", "100::/64", "2001::/23", "2001:db8::/32", "2001:10::/28"],
        *["fc00::/7", "fe80::/10", "ff00::/8"],
    ]:
        network = ipaddress.ip_network(cidr)
        first, last = int(network.network_address), int(network.broadcast_address)
        top = 2**network.max_prefixlen - 1
        make = ipaddress.IPv4Address if network.version == 4 else ipaddress.IPv6Address
        for value in (first - 1, first, last, last + 1):
            if 0 <= value <= top:
                samples.append(make(value))
    return samples


@given(
    st.one_of(
        st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
        st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
        st.sampled_from(_special_boundaries()),
    )
)
def test_classification_covers_everything_ipaddress_calls_non_global(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # normalised before classification
    reason = classify_ip(str(address))
    if address.is_loopback:
        assert reason == GeoReason.LOOPBACK
    elif address.is_multicast or not address.is_global:
        assert reason is not None
    if reason is None:
        assert address.is_global
