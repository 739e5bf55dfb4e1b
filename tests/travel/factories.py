"""Builders and places shared by the travel tests."""

from __future__ import annotations

from datetime import UTC, datetime

from globeguard.settings import TravelSettings
from globeguard.travel.timeline import Place, TravelEvent

# Every false-positive control off: grades come from speed alone.
NO_CONTROLS = TravelSettings(min_distance_km=0, known_location_radius_km=0, learning_logins=0)

# The Superman seed README's places (its GeoIP database, not the bundled one).
WASHINGTON = Place(38.9206, -76.8787, 1000)
ZHENGZHOU = Place(34.7725, 113.7266, 50)
# GeoLite2 city centroids; 337.4 km apart.
KASSEL = Place(51.3167, 9.5, 100, "DE", "Kassel")
AMSTERDAM = Place(52.3824, 4.8995, 200, "NL", "Amsterdam")
# MaxMind's "somewhere in the US" centroid (r1000) and a point 1069.0 mi due east of it.
US_CENTROID = Place(37.751, -97.822, 1000, "US")
US_EAST = Place(37.751, -78.21816445066862, 1000, "US")
LONDON = Place(51.5074, -0.1278, 20, "GB", "London")
SYDNEY = Place(-33.8688, 151.2093, 20, "AU", "Sydney")


def at(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, UTC)


def event(
    key: str,
    unix_seconds: float,
    place: Place | None = None,
    *,
    seq: int = 0,
    success: bool = True,
    ip: str | None = None,
) -> TravelEvent:
    return TravelEvent(key, at(unix_seconds), seq, place, success, ip)


def equator(lon: float) -> Place:
    """A point on the equator: distances from (0, 0) are R * lon in radians."""
    return Place(0.0, lon)
