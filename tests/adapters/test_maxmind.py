"""MaxMindLocator beyond the contract: reloads, start-up failures, the cache, ASN data."""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from globeguard.adapters.geoip import GeoDatabaseError, GeoReason, MaxMindLocator
from globeguard.settings import GeoIpSettings
from tests.support.mmdb import asn_record, city_record, write_asn_db, write_city_db

INTERVAL = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _db(path: Path, latitude: float, **kwargs: Any) -> Path:
    """A City DB placing 8.8.8.0/24 at (latitude, 10.0): the latitude tells versions apart."""
    record = city_record(latitude, 10.0, radius=100, country="DE")
    return write_city_db(path, {"8.8.8.0/24": record, "2001:4860::/32": record}, **kwargs)


def _replace(path: Path, write: Any) -> None:
    """Swap a new file in the way geoipupdate does: write aside, then rename over."""
    staging = path.with_suffix(".new")
    write(staging)
    os.replace(staging, path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def city(tmp_path: Path) -> Path:
    return _db(tmp_path / "city.mmdb", 1.0)


def _locator(city: Path, clock: FakeClock, **kwargs: Any) -> MaxMindLocator:
    options: dict[str, Any] = {"cache_size": 100, "reload_check_interval_s": INTERVAL}
    options.update(kwargs)
    return MaxMindLocator(city, options.pop("asn_db", None), clock=clock, **options)


# --- reloading ------------------------------------------------------------------------


def test_replaced_file_is_picked_up_after_the_check_interval(city: Path, clock: FakeClock) -> None:
    locator = _locator(city, clock)
    assert locator.locate("8.8.8.8").latitude == 1.0
    _replace(city, lambda path: _db(path, 2.0))

    clock.advance(INTERVAL - 1)
    assert locator.locate("8.8.8.8").latitude == 1.0  # not checked yet: old data, cached

    clock.advance(1)
    assert locator.locate("8.8.8.8").latitude == 2.0
    assert locator.locate_many(["8.8.8.8"])["8.8.8.8"].latitude == 2.0
    locator.close()


def test_reload_empties_the_cache(city: Path, clock: FakeClock) -> None:
    locator = _locator(city, clock)
    locator.locate("8.8.8.8")
    locator.locate("8.8.8.4")
    assert locator.cache_info().currsize == 2
    _replace(city, lambda path: _db(path, 2.0))
    clock.advance(INTERVAL)
    assert locator.locate("8.8.8.4").latitude == 2.0
    assert locator.cache_info().currsize == 1
    locator.close()


def test_unchanged_file_is_not_reopened(city: Path, clock: FakeClock) -> None:
    locator = _locator(city, clock)
    reader = locator._city.reader
    clock.advance(INTERVAL * 3)
    locator.locate("8.8.8.8")
    assert locator._city.reader is reader
    locator.close()


def test_corrupt_replacement_keeps_serving_the_old_data(
    city: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    locator = _locator(city, clock)
    _replace(city, lambda path: path.write_bytes(b"not a maxmind database" * 100))
    clock.advance(INTERVAL)
    with caplog.at_level(logging.WARNING, logger="globeguard.adapters.geoip.maxmind"):
        assert locator.locate("8.8.8.8").latitude == 1.0
        clock.advance(INTERVAL)
        assert locator.locate("8.8.8.8").latitude == 1.0
    warnings = [r for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert len(warnings) == 1  # once per bad file, not once per check
    assert str(city) in warnings[0].getMessage()

    # A later good file is picked up.
    _replace(city, lambda path: _db(path, 3.0))
    clock.advance(INTERVAL)
    assert locator.locate("8.8.8.8").latitude == 3.0
    locator.close()


def test_deleted_file_keeps_serving_the_loaded_copy(
    city: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    locator = _locator(city, clock, cache_size=0)
    city.unlink()
    clock.advance(INTERVAL)
    with caplog.at_level(logging.WARNING):
        assert locator.locate("8.8.8.8").latitude == 1.0
    assert any("keeping the loaded copy" in r.getMessage() for r in caplog.records)
    _db(city, 4.0)
    clock.advance(INTERVAL)
    assert locator.locate("8.8.8.8").latitude == 4.0
    locator.close()


def test_asn_database_is_reloaded_too(tmp_path: Path, city: Path, clock: FakeClock) -> None:
    asn = write_asn_db(tmp_path / "asn.mmdb", {"8.8.8.0/24": asn_record(15169, "GOOGLE")})
    locator = _locator(city, clock, asn_db=asn)
    assert locator.locate("8.8.8.8").asn == 15169
    _replace(asn, lambda path: write_asn_db(path, {"8.8.8.0/24": asn_record(64500, "OTHER")}))
    clock.advance(INTERVAL)
    assert (locator.locate("8.8.8.8").asn, locator.locate("8.8.8.8").as_org) == (64500, "OTHER")
    locator.close()


def test_lookups_during_reloads_from_threads(city: Path) -> None:
    """Readers are swapped and closed while other threads look up: nothing may fail."""
    locator = MaxMindLocator(city, None, cache_size=0, reload_check_interval_s=0)
    errors: list[BaseException] = []
    stop = threading.Event()

    def look_up() -> None:
        try:
            while not stop.is_set():
                assert locator.locate("8.8.8.8").latitude in (1.0, 2.0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=look_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for generation in range(20):
        _replace(city, lambda path, g=generation: _db(path, 1.0 + g % 2))
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    locator.close()


# --- start-up failures ------------------------------------------------------------------


def test_missing_city_database_fails_at_construction(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "GeoLite2-City.mmdb"
    with pytest.raises(GeoDatabaseError) as caught:
        MaxMindLocator(missing, None, cache_size=10, reload_check_interval_s=INTERVAL)
    assert "GLOBEGUARD_GEOIP__CITY_DB" in str(caught.value)
    assert str(missing) in str(caught.value)


def test_corrupt_city_database_fails_at_construction(tmp_path: Path) -> None:
    corrupt = tmp_path / "city.mmdb"
    corrupt.write_bytes(b"\x00" * 4096)
    with pytest.raises(GeoDatabaseError, match="GLOBEGUARD_GEOIP__CITY_DB"):
        MaxMindLocator(corrupt, None, cache_size=10, reload_check_interval_s=INTERVAL)


def test_missing_asn_database_fails_at_construction(tmp_path: Path, city: Path) -> None:
    with pytest.raises(GeoDatabaseError, match="GLOBEGUARD_GEOIP__ASN_DB"):
        MaxMindLocator(city, tmp_path / "asn.mmdb", cache_size=10, reload_check_interval_s=1)


def test_non_city_database_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    asn = write_asn_db(tmp_path / "asn.mmdb", {"8.8.8.0/24": asn_record(15169, "GOOGLE")})
    with caplog.at_level(logging.WARNING):
        locator = MaxMindLocator(asn, None, cache_size=0, reload_check_interval_s=INTERVAL)
    assert any("not a City one" in r.getMessage() for r in caplog.records)
    assert locator.locate("8.8.8.8").reason == GeoReason.NO_LOCATION
    locator.close()


# --- cache --------------------------------------------------------------------------------


def test_cache_is_bounded_and_evicts_the_least_recently_used(city: Path, clock: FakeClock) -> None:
    locator = _locator(city, clock, cache_size=2)
    for ip in ("8.8.8.1", "8.8.8.2", "8.8.8.3"):
        locator.locate(ip)
    info = locator.cache_info()
    assert (info.maxsize, info.currsize, info.misses, info.hits) == (2, 2, 3, 0)

    locator.locate("8.8.8.3")
    assert locator.cache_info().hits == 1
    locator.locate("8.8.8.1")  # evicted: decoded again
    assert locator.cache_info().misses == 4
    locator.close()


def test_cache_is_keyed_by_normalised_address(city: Path, clock: FakeClock) -> None:
    locator = _locator(city, clock)
    first = locator.locate("8.8.8.8")
    assert locator.locate("::ffff:8.8.8.8") is first
    locator.locate("2001:4860:0:0::1")
    locator.locate("2001:4860::1")
    assert locator.cache_info().misses == 2
    locator.close()


def test_cache_size_zero_disables_the_cache(city: Path, clock: FakeClock) -> None:
    locator = _locator(city, clock, cache_size=0)
    assert locator.locate("8.8.8.8").latitude == locator.locate("8.8.8.8").latitude == 1.0
    info = locator.cache_info()
    assert (info.currsize, info.hits) == (0, 0)
    locator.close()


@pytest.mark.parametrize("cache_size", [0, 100])
def test_locate_many_resolves_each_distinct_address_once(
    city: Path, clock: FakeClock, cache_size: int
) -> None:
    locator = _locator(city, clock, cache_size=cache_size)
    ips = ["8.8.8.8", "8.8.8.8", "::ffff:8.8.8.8", "8.8.8.4", "bogus", "bogus", "10.1.1.1"]
    results = locator.locate_many(ips)
    assert list(results) == ["8.8.8.8", "::ffff:8.8.8.8", "8.8.8.4", "bogus", "10.1.1.1"]
    assert results["8.8.8.8"] is results["::ffff:8.8.8.8"]
    assert locator.cache_info().misses == 3  # 8.8.8.8, 8.8.8.4, 10.1.1.1
    locator.close()


# --- ASN enrichment -------------------------------------------------------------------------


def test_asn_enrichment(tmp_path: Path, city: Path, clock: FakeClock) -> None:
    asn = write_asn_db(
        tmp_path / "asn.mmdb",
        {
            "8.8.8.0/24": asn_record(15169, "GOOGLE"),
            "1.1.1.0/24": asn_record(13335, "CLOUDFLARENET"),
        },
    )
    locator = _locator(city, clock, asn_db=asn)

    google = locator.locate("8.8.8.8")
    assert (google.located, google.asn, google.as_org) == (True, 15169, "GOOGLE")

    # Not in the City DB, but the ASN DB knows it: reported, still not located.
    cloudflare = locator.locate("1.1.1.1")
    assert (cloudflare.reason, cloudflare.asn, cloudflare.as_org) == (
        GeoReason.NOT_FOUND,
        13335,
        "CLOUDFLARENET",
    )

    # Located, but no ASN record.
    ipv6 = locator.locate("2001:4860::1")
    assert (ipv6.located, ipv6.asn, ipv6.as_org) == (True, None, None)

    assert locator.locate("10.0.0.1").asn is None
    locator.close()


# --- describe, settings, database shapes ------------------------------------------------------


def test_describe(tmp_path: Path, clock: FakeClock) -> None:
    city = _db(tmp_path / "city.mmdb", 1.0, build_epoch=1577209301)
    asn = write_asn_db(tmp_path / "asn.mmdb", {}, build_epoch=1735689600)
    locator = _locator(city, clock, asn_db=asn)
    info = locator.describe()
    assert info["database_type"] == "GeoIP2-City"
    assert info["build_date"] == "2019-12-24"
    assert info["build_epoch"] == 1577209301
    assert info["path"] == str(city)
    assert info["bundled"] is False
    assert info["asn"]["database_type"] == "GeoLite2-ASN"
    assert info["asn"]["build_date"] == "2025-01-01"
    assert info["asn"]["path"] == str(asn)
    locator.close()


def test_describe_follows_a_reload(city: Path, clock: FakeClock) -> None:
    locator = _locator(city, clock)
    _replace(city, lambda path: _db(path, 2.0, build_epoch=1735689600))
    clock.advance(INTERVAL)
    locator.locate("8.8.8.8")
    assert locator.describe()["build_date"] == "2025-01-01"
    locator.close()


def test_from_settings(city: Path) -> None:
    settings = GeoIpSettings(city_db=city, cache_size=7, reload_check_interval=timedelta(seconds=5))
    locator = MaxMindLocator.from_settings(settings)
    assert locator.cache_info().maxsize == 7
    assert locator.describe()["path"] == str(city)
    locator.close()


def test_default_settings_use_the_bundled_geolite2() -> None:
    locator = MaxMindLocator.from_settings(GeoIpSettings())
    assert locator.describe()["bundled"] is True
    assert locator.locate("24.242.71.20").city_name == "Austin"
    locator.close()


def test_ipv4_only_database_answers_ipv6_with_not_found(tmp_path: Path, clock: FakeClock) -> None:
    path = write_city_db(
        tmp_path / "v4.mmdb",
        {"8.8.8.0/24": city_record(1.0, 2.0, radius=5, country="US")},
        ip_version=4,
    )
    locator = _locator(path, clock)
    assert locator.locate("8.8.8.8").located
    assert locator.locate("::ffff:8.8.8.8").located
    assert locator.locate("2001:4860::1").reason == GeoReason.NOT_FOUND
    locator.close()


def test_lookup_retries_on_a_reader_closed_by_a_concurrent_reload(
    city: Path, clock: FakeClock
) -> None:
    """The window the thread test aims at, made deterministic: the reader we picked up is
    swapped and closed before our lookup reaches it."""
    locator = _locator(city, clock, cache_size=0)
    database = locator._city
    fresh = database._state

    class ClosedMidLookup:
        def get(self, ip: str) -> Any:
            database._state = fresh  # the concurrent reload lands...
            raise ValueError("Attempt to read from a closed MaxMind DB.")

    database._state = (ClosedMidLookup(), True)  # type: ignore[assignment]
    assert locator.locate("8.8.8.8").latitude == 1.0
    locator.close()
