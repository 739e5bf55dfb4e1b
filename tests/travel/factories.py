"""Builders, places and hypothesis strategies shared by the travel tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from globeguard.settings import TravelSettings
from globeguard.travel.timeline import History, Place, TravelEvent

# Every false-positive control off: grades come from speed alone.
NO_CONTROLS = TravelSettings(
    min_distance_km=0, known_location_radius_km=0, learning_logins=0, learning_period=timedelta(0)
)


def settled(**changes: object) -> TravelSettings:
    """The settings with `changes`, for a settled user: no learning period (the default is a
    week, which grades every journey of a new user's first days one step lower)."""
    return TravelSettings.model_validate({"learning_period": timedelta(0), **changes})


SETTLED = settled()

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


# --- hypothesis strategies shared by the property tests ----------------------------------

lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)
radii = st.one_of(st.none(), st.integers(0, 1000))
random_places = st.builds(Place, lats, lons, radii)
# Mostly a few real cities, so pairs at zero distance and below the threshold happen often.
POOL = (LONDON, SYDNEY, KASSEL, AMSTERDAM, US_CENTROID, US_EAST)
places = st.one_of(st.sampled_from(POOL), st.none(), random_places)
WITH_CONTROLS = TravelSettings(
    min_distance_km=100, known_location_radius_km=300, learning_logins=2,
    learning_period=timedelta(0),
)  # fmt: skip
settings_choices = st.sampled_from([NO_CONTROLS, TravelSettings(), SETTLED, WITH_CONTROLS])

Spec = tuple[int, Place | None, bool]  # (unix time, place, success)
# At most 5 distinct seconds for up to 8 events: ties in time are common.
TIES = st.integers(0, 4).map(lambda k: k * 900)


def spec_lists(
    times: st.SearchStrategy[int], unique: bool, max_size: int = 8
) -> st.SearchStrategy[list[Spec]]:
    spec = st.tuples(times, places, st.booleans())
    unique_by = (lambda s: s[0]) if unique else None
    return st.lists(spec, min_size=1, max_size=max_size, unique_by=unique_by)


def post(specs: Sequence[Spec], order: Sequence[int]) -> list[TravelEvent]:
    """Events as stored after posting `specs` in `order`: event ``e{i}`` is ``specs[i]`` and
    its arrival_seq is its posting rank, so ties in time are broken by posting order."""
    return [
        TravelEvent(f"e{i}", at(specs[i][0]), rank, specs[i][1], specs[i][2])
        for rank, i in enumerate(order)
    ]


def history_of(*events: TravelEvent) -> History:
    """The history a login gets after these events (in event order) when every success was
    trusted: each success counts and each located success's place is known."""
    successes = [e for e in events if e.success]
    known: dict[tuple[float, float], Place] = {}
    for e in successes:
        if e.place is not None:
            known.setdefault((e.place.lat, e.place.lon), e.place)
    first = successes[0].occurred_at if successes else None
    return History(len(successes), first, tuple(known.values()))
