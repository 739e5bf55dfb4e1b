"""IP geolocation: the GeoLocator port and its MaxMind (.mmdb) adapter."""

from __future__ import annotations

from globeguard.adapters.geoip.maxmind import MaxMindLocator, bundled_city_db
from globeguard.adapters.geoip.port import (
    GeoDatabaseError,
    GeoLocator,
    GeoReason,
    GeoResult,
)

__all__ = [
    "GeoDatabaseError",
    "GeoLocator",
    "GeoReason",
    "GeoResult",
    "MaxMindLocator",
    "bundled_city_db",
]
