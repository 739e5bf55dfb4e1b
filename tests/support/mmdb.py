"""Write tiny MaxMind DB files for tests, in the GeoIP2 City and GeoLite2 ASN layouts.

Databases are IPv6 trees (as MaxMind's own are) that also answer IPv4: mmdb_writer's
``ipv4_compatible`` stores an IPv4 network under ``::/96``, which is where the reader looks
for IPv4 addresses. MaxMind's writer additionally aliases ``::ffff:0:0/96`` (IPv4-mapped)
to that subtree; mmdb_writer does not, so every IPv4 network is written a second time in
its mapped form, and both ``1.2.3.4`` and ``::ffff:1.2.3.4`` resolve.

    write_city_db(path, {"1.2.3.0/24": city_record(48.85, 2.35, radius=20, country="FR")})
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPNetwork, IPSet

Record = dict[str, Any]

# geoname ids and English names for the countries the tests use.
COUNTRIES: dict[str, tuple[str, int]] = {
    "US": ("United States", 6252001),
    "CN": ("China", 1814991),
    "DE": ("Germany", 2921044),
    "FR": ("France", 3017382),
    "GB": ("United Kingdom", 2635167),
    "AU": ("Australia", 2077456),
}


class _Writer(MMDBWriter):
    """MMDBWriter whose build epoch can be pinned (it always stamps the current time)."""

    def __init__(self, build_epoch: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._build_epoch = build_epoch

    def _build_meta(self) -> dict[str, Any]:
        meta = super()._build_meta()
        if self._build_epoch is not None:
            meta["build_epoch"] = self._build_epoch
        return meta


def city_record(
    latitude: float | None = None,
    longitude: float | None = None,
    *,
    radius: int | None = None,
    time_zone: str | None = None,
    country: str | None = None,
    subdivision: tuple[str, str, int] | None = None,
    city: tuple[str, int] | None = None,
) -> Record:
    """A record in the GeoIP2 City layout.

    No latitude/longitude and no time zone: no ``location`` block at all. ``radius=None``
    leaves out ``accuracy_radius`` (as DB-IP does). ``country`` is an ISO code from
    :data:`COUNTRIES`; ``subdivision`` is (iso_code, English name, geoname_id); ``city``
    is (English name, geoname_id).
    """
    record: Record = {}
    location: Record = {}
    if latitude is not None:
        location["latitude"] = float(latitude)
    if longitude is not None:
        location["longitude"] = float(longitude)
    if radius is not None:
        location["accuracy_radius"] = radius
    if time_zone is not None:
        location["time_zone"] = time_zone
    if location:
        record["location"] = location
    if country is not None:
        name, geoname_id = COUNTRIES[country]
        record["country"] = {"iso_code": country, "geoname_id": geoname_id, "names": {"en": name}}
    if subdivision is not None:
        iso, name, geoname_id = subdivision
        record["subdivisions"] = [
            {"iso_code": iso, "geoname_id": geoname_id, "names": {"en": name}}
        ]
    if city is not None:
        name, geoname_id = city
        record["city"] = {"geoname_id": geoname_id, "names": {"en": name}}
    return record


def asn_record(number: int, organization: str) -> Record:
    return {"autonomous_system_number": number, "autonomous_system_organization": organization}


def _networks(key: str, ip_version: int) -> list[IPNetwork]:
    network = IPNetwork(key)
    if network.version == 6 or ip_version == 4:
        return [network]
    # Under ::/96 (written by ipv4_compatible) and again under ::ffff:0:0/96.
    return [network, network.ipv6(ipv4_compatible=False)]


def write_mmdb(
    path: Path,
    records: Mapping[str, Record],
    *,
    database_type: str,
    build_epoch: int | None = None,
    ip_version: int = 6,
) -> Path:
    """Write ``{cidr_or_ip: record}`` to ``path``. Wider networks are written first, so a
    narrower one inside them takes precedence, whatever the order of ``records``."""
    writer = _Writer(
        build_epoch,
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description=f"Globeguard test {database_type}",
    )
    entries = [
        (net, record) for key, record in records.items() for net in _networks(key, ip_version)
    ]
    for network, record in sorted(entries, key=lambda item: (item[0].version, item[0].prefixlen)):
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def write_city_db(
    path: Path,
    records: Mapping[str, Record],
    *,
    database_type: str = "GeoIP2-City",
    build_epoch: int | None = None,
    ip_version: int = 6,
) -> Path:
    return write_mmdb(
        path, records, database_type=database_type, build_epoch=build_epoch, ip_version=ip_version
    )


def write_asn_db(
    path: Path, records: Mapping[str, Record], *, build_epoch: int | None = None
) -> Path:
    return write_mmdb(path, records, database_type="GeoLite2-ASN", build_epoch=build_epoch)


def superman_seed_records() -> dict[str, Record]:
    """The locations the Superman detector README's worked examples assume (an older GeoLite2
    than the bundled one, which places 206.81.252.x in Halethorpe at radius 20)."""
    washington = city_record(38.9206, -76.8787, radius=1000, country="US")
    zhengzhou = city_record(
        34.7725,
        113.7266,
        radius=50,
        time_zone="Asia/Shanghai",
        country="CN",
        subdivision=("HA", "Henan", 1808520),
        city=("Zhengzhou", 1784658),
    )
    return {
        "206.81.252.200": washington,
        "206.81.252.7": washington,
        "42.222.21.19": zhengzhou,
    }


def write_superman_seed_db(path: Path) -> Path:
    return write_city_db(path, superman_seed_records())
