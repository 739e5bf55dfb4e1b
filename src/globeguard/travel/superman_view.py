"""The Superman seed's view of the same pairs: two booleans and a truncated speed.

For the current event: ``travel_to_current_geo_suspicious`` is preceding → current faster than
the threshold, ``travel_from_current_geo_suspicious`` is current → subsequent faster than it;
both are False when that neighbour is absent (or a side cannot be located). Speed is computed
as the seed's reference implementation does it: haversine on R = 3958 mi, Δt floored at 1 s,
reported truncated to an integer, while the flag is decided on the unrounded speed (so
500.9 mph reports 500 and is flagged). No accuracy radius and no false-positive control is
applied here.

The seed README's replay comes out as published: bob at 206.81.252.200 (38.9206, -76.8787)
at 1514764800 and at 42.222.21.19 (34.7725, 113.7266) at 1514769200 is 7298.7 mi in 4400 s,
5971.70 mph, reported 5971 and flagged; the late-arriving 206.81.252.7 at 1514763200 at the
same coordinates is speed 0 from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from globeguard.travel.geo_math import (
    SUPERMAN_EARTH_RADIUS_MI,
    central_angle,
    elapsed_seconds,
    exceeds,
    speed_mph,
    truncate_speed,
)
from globeguard.travel.timeline import Neighbours, TravelEvent

DEFAULT_THRESHOLD_MPH = 500.0


@dataclass(frozen=True, slots=True)
class SupermanAccess:
    """A neighbour as the seed reports it. ``event`` carries the ip, time and place to
    render; ``speed_mph`` is the unrounded speed and ``speed`` the truncated one the seed
    shows; both are None when either side has no place."""

    event: TravelEvent
    speed_mph: float | None
    speed: int | None
    suspicious: bool


@dataclass(frozen=True, slots=True)
class SupermanView:
    current: TravelEvent
    preceding: SupermanAccess | None
    subsequent: SupermanAccess | None
    travel_to_current_geo_suspicious: bool
    travel_from_current_geo_suspicious: bool


def superman_speed_mph(a: TravelEvent, b: TravelEvent) -> float | None:
    """Unrounded speed between two events on the seed's 3958 mi radius, or None."""
    if a.place is None or b.place is None:
        return None
    angle = central_angle(a.place.lat, a.place.lon, b.place.lat, b.place.lon)
    seconds = elapsed_seconds(a.occurred_at, b.occurred_at)
    return speed_mph(SUPERMAN_EARTH_RADIUS_MI * angle, seconds)


def superman_access(
    current: TravelEvent, neighbour: TravelEvent, threshold_mph: float
) -> SupermanAccess:
    speed = superman_speed_mph(current, neighbour)
    if speed is None:
        return SupermanAccess(neighbour, None, None, suspicious=False)
    return SupermanAccess(neighbour, speed, truncate_speed(speed), exceeds(speed, threshold_mph))


def superman_view(
    current: TravelEvent, neighbours: Neighbours, threshold_mph: float = DEFAULT_THRESHOLD_MPH
) -> SupermanView:
    before, after = neighbours.preceding, neighbours.subsequent
    preceding = None if before is None else superman_access(current, before, threshold_mph)
    subsequent = None if after is None else superman_access(current, after, threshold_mph)
    return SupermanView(
        current=current,
        preceding=preceding,
        subsequent=subsequent,
        travel_to_current_geo_suspicious=preceding is not None and preceding.suspicious,
        travel_from_current_geo_suspicious=subsequent is not None and subsequent.suspicious,
    )
