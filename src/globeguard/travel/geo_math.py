"""Great-circle distance, elapsed time and speed: the arithmetic under travel detection.

Two Earth radii on purpose:

- ``EARTH_RADIUS_KM`` = 6371.0088 km (3958.76 mi), the IUGG mean radius. Globeguard's own
  verdicts use it: it is the radius that minimises the haversine error over the globe (about
  0.5 % at worst against the ellipsoid).
- ``SUPERMAN_EARTH_RADIUS_MI`` = 3958 mi exactly, the constant of the haversine package the
  Superman seed's reference implementation (and 12 of the 17 public ports) uses. The seed's
  example speed 5971 (Washington → Zhengzhou in 4400 s) only comes out with it:
  3958 mi gives 5971.70 mph, truncated to 5971; the mean radius gives 5972.85 mph.
"""

from __future__ import annotations

import math
from datetime import datetime

KM_PER_MILE = 1.609344
EARTH_RADIUS_KM = 6371.0088
EARTH_RADIUS_MI = EARTH_RADIUS_KM / KM_PER_MILE
SUPERMAN_EARTH_RADIUS_MI = 3958.0

# Timestamps have whole-second resolution, so two events in the same second were at most
# 1 s apart as far as we can tell; flooring Δt there keeps speeds finite and makes them a lower
# bound on the true speed.
MIN_ELAPSED_SECONDS = 1.0
SECONDS_PER_HOUR = 3600.0


def central_angle(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Angle in radians between two points given in degrees (haversine form, stable for close
    points). Absolute differences make it exactly symmetric; the clamp keeps rounding on
    antipodes from leaving asin's domain, so the result is within [0, π]."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = abs(phi2 - phi1) / 2
    half_dlambda = abs(math.radians(lon2) - math.radians(lon1)) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * math.asin(min(1.0, math.sqrt(h)))


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return EARTH_RADIUS_KM * central_angle(lat1, lon1, lat2, lon2)


def km_to_mi(km: float) -> float:
    return km / KM_PER_MILE


def elapsed_seconds(earlier: datetime, later: datetime) -> float:
    """|Δt| in seconds, floored at 1 s."""
    return max(abs((later - earlier).total_seconds()), MIN_ELAPSED_SECONDS)


def speed_mph(distance_mi: float, seconds: float) -> float:
    return distance_mi / (seconds / SECONDS_PER_HOUR)


def exceeds(speed: float, threshold_mph: float) -> bool:
    """The flag: the unrounded speed strictly above the threshold (500.0 is not, 500.01 is)."""
    return speed > threshold_mph


def truncate_speed(speed: float) -> int:
    """How the Superman seed reports speed: 55.9 → 55, 5971.70 → 5971."""
    return math.trunc(speed)
