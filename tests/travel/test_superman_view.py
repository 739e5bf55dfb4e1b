"""The Superman seed's view: its README replay to the digit, truncated speeds, flags on the
unrounded speed, no radii and no false-positive controls."""

from __future__ import annotations

import math

import pytest

from globeguard.travel.detect import Control, Grade
from globeguard.travel.geo_math import SUPERMAN_EARTH_RADIUS_MI, truncate_speed
from globeguard.travel.grading import judge
from globeguard.travel.superman_view import (
    SupermanView,
    superman_speed_mph,
    superman_view,
)
from globeguard.travel.timeline import Neighbours, Place, TravelEvent, find_neighbours
from tests.travel.factories import (
    AMSTERDAM,
    KASSEL,
    LONDON,
    SETTLED,
    WASHINGTON,
    ZHENGZHOU,
    equator,
    event,
    history_of,
)


class Store:
    """What the HTTP layer does per post: store (unless replayed), then query neighbours."""

    def __init__(self) -> None:
        self.events: dict[str, TravelEvent] = {}

    def post(self, key: str, unix_seconds: int, ip: str) -> SupermanView:
        if key not in self.events:
            place = ZHENGZHOU if ip.startswith("42.") else WASHINGTON
            seq = len(self.events) + 1
            self.events[key] = event(key, unix_seconds, place, seq=seq, ip=ip)
        current = self.events[key]
        return superman_view(current, find_neighbours(self.events.values(), current))


def test_seed_readme_replay() -> None:
    store = Store()

    view = store.post("85ad929a", 1514764800, "206.81.252.200")
    assert (view.preceding, view.subsequent) == (None, None)
    assert view.travel_to_current_geo_suspicious is False
    assert view.travel_from_current_geo_suspicious is False

    view = store.post("8ae38b0c", 1514769200, "42.222.21.19")
    assert view.preceding is not None and view.subsequent is None
    assert view.preceding.event.ip == "206.81.252.200"
    assert view.preceding.event.occurred_at.timestamp() == 1514764800
    assert view.preceding.speed == 5971
    assert view.preceding.speed_mph == pytest.approx(5971.70, abs=0.005)
    assert view.travel_to_current_geo_suspicious is True
    assert view.travel_from_current_geo_suspicious is False

    # Received out of order: it happened before the first post.
    view = store.post("a547a38c", 1514763200, "206.81.252.7")
    assert view.preceding is None and view.subsequent is not None
    assert view.subsequent.event.ip == "206.81.252.200"
    assert view.subsequent.speed == 0
    assert view.travel_to_current_geo_suspicious is False
    assert view.travel_from_current_geo_suspicious is False

    # The first query again: new neighbours on both sides.
    view = store.post("85ad929a", 1514764800, "206.81.252.200")
    assert view.preceding is not None and view.subsequent is not None
    assert (view.preceding.event.ip, view.preceding.speed) == ("206.81.252.7", 0)
    assert view.preceding.event.occurred_at.timestamp() == 1514763200
    assert (view.subsequent.event.ip, view.subsequent.speed) == ("42.222.21.19", 5971)
    assert view.subsequent.event.occurred_at.timestamp() == 1514769200
    assert view.travel_to_current_geo_suspicious is False
    assert view.travel_from_current_geo_suspicious is True


def test_seed_speed_needs_3958_and_truncation() -> None:
    a = event("a", 1514764800, WASHINGTON)
    b = event("b", 1514769200, ZHENGZHOU, seq=1)
    speed = superman_speed_mph(a, b)
    assert speed is not None and truncate_speed(speed) == 5971
    assert math.floor(speed + 0.5) == 5972  # rounding would miss the README's 5971
    # Globeguard's own view uses the mean radius: 5972.85 mph.
    _, reasons = judge(b, a, history_of(a), SETTLED)
    assert reasons is not None
    assert reasons["speed_mph"] == pytest.approx(5972.85, abs=0.005)


def equator_pair(target_mph: float, seconds: float = 3600) -> tuple[TravelEvent, TravelEvent]:
    """Two events on the equator whose Superman speed is `target_mph` (up to rounding)."""
    lon = math.degrees(target_mph * seconds / 3600 / SUPERMAN_EARTH_RADIUS_MI)
    return event("a", 0, equator(0.0), seq=1), event("b", seconds, equator(lon), seq=2)


@pytest.mark.parametrize(
    ("target", "reported", "flagged", "seconds"),
    [
        pytest.param(0.0, 0, False, 3600, id="zero"),
        pytest.param(55.24, 55, False, 3600, id="handout-55"),
        pytest.param(55.9, 55, False, 3600, id="55.9-truncates-to-55"),
        pytest.param(499.99, 499, False, 3600, id="499.99"),
        pytest.param(500.9, 500, True, 3600, id="500.9-reports-500-but-flags"),
        pytest.param(501.5, 501, True, 3600, id="501.5"),
        pytest.param(27600.4, 27600, True, 300, id="handout-27600-in-5-minutes"),
    ],
)
def test_speed_is_truncated_and_flag_uses_unrounded(
    target: float, reported: int, flagged: bool, seconds: int
) -> None:
    a, b = equator_pair(target, seconds)
    view = superman_view(b, Neighbours(a, None))
    assert view.preceding is not None
    assert view.preceding.speed_mph == pytest.approx(target, abs=1e-6)
    assert view.preceding.speed == reported
    assert view.preceding.suspicious is flagged
    assert view.travel_to_current_geo_suspicious is flagged


@pytest.mark.parametrize(
    ("speed", "expected"),
    [(55.9, 55), (55.24, 55), (0.99, 0), (500.999, 500), (5971.704, 5971), (0.0, 0)],
)
def test_truncate_speed(speed: float, expected: int) -> None:
    assert truncate_speed(speed) == expected


@pytest.mark.parametrize(
    ("threshold", "flagged"),
    [(500.0, True), (754.0, True), (755.0, False), (1000.0, False)],
)
def test_threshold_is_configurable(threshold: float, flagged: bool) -> None:
    kassel, amsterdam = event("k", 0, KASSEL, seq=1), event("a", 1000, AMSTERDAM, seq=2)
    view = superman_view(amsterdam, Neighbours(kassel, None), threshold)
    assert view.travel_to_current_geo_suspicious is flagged


def test_exactly_the_threshold_is_not_flagged() -> None:
    a, b = equator_pair(500.0)
    speed = superman_speed_mph(a, b)
    assert speed is not None
    assert superman_view(b, Neighbours(a, None), speed).travel_to_current_geo_suspicious is False
    nudged = superman_view(b, Neighbours(a, None), speed - 0.01)
    assert nudged.travel_to_current_geo_suspicious is True


def test_radii_and_controls_do_not_touch_the_flags() -> None:
    # Kassel → Amsterdam in 1000 s: 754 mph between centroids. Globeguard's grade is lowered
    # twice over (radii: suspicious; learning: plausible); the Superman flag stays raised.
    kassel, amsterdam = event("k", 0, KASSEL, seq=1), event("a", 1000, AMSTERDAM, seq=2)
    view = superman_view(amsterdam, Neighbours(kassel, None))
    assert view.preceding is not None and view.preceding.speed == 754
    assert view.travel_to_current_geo_suspicious is True
    grade, reasons = judge(amsterdam, kassel, history_of(kassel), SETTLED)
    assert grade is Grade.PLAUSIBLE and reasons is not None
    assert reasons["raw_grade"] == Grade.SUSPICIOUS.value
    assert reasons["lowered_by"] == Control.LEARNING.value


def test_same_second_neighbours_use_one_second() -> None:
    a, b = event("a", 100, equator(0.0), seq=1), event("b", 100, equator(0.01), seq=2)
    view = superman_view(a, find_neighbours([a, b], a))
    assert view.preceding is None and view.subsequent is not None
    assert view.subsequent.speed == truncate_speed(
        SUPERMAN_EARTH_RADIUS_MI * math.radians(0.01) * 3600
    )
    assert view.travel_from_current_geo_suspicious is True
    # Same second, same place: speed 0, never suspicious.
    c = event("c", 100, equator(0.0), seq=3)
    view = superman_view(c, find_neighbours([a, c], c))
    assert view.preceding is not None and view.preceding.speed == 0
    assert view.travel_to_current_geo_suspicious is False


@pytest.mark.parametrize(
    ("current_place", "neighbour_place"),
    [
        pytest.param(LONDON, None, id="neighbour-unlocatable"),
        pytest.param(None, LONDON, id="current-unlocatable"),
    ],
)
def test_unlocatable_side_has_no_speed_and_no_flag(
    current_place: Place | None, neighbour_place: Place | None
) -> None:
    neighbour = event("n", 0, neighbour_place, seq=1, ip="10.0.0.1")
    current = event("c", 1, current_place, seq=2)
    view = superman_view(current, Neighbours(neighbour, neighbour))
    for access in (view.preceding, view.subsequent):
        assert access is not None and access.event is neighbour
        assert (access.speed, access.speed_mph, access.suspicious) == (None, None, False)
    assert view.travel_to_current_geo_suspicious is False
    assert view.travel_from_current_geo_suspicious is False
