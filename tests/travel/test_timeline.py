"""The total order of a subject's events, neighbour lookup, and the history the controls use."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from globeguard.travel.timeline import (
    Neighbours,
    Place,
    TravelEvent,
    find_neighbours,
    sort_timeline,
)
from tests.travel.factories import LONDON, SYDNEY, event


@pytest.mark.parametrize(
    ("lat", "lon", "radius"),
    [
        pytest.param(90.01, 0.0, None, id="lat-high"),
        pytest.param(-90.01, 0.0, None, id="lat-low"),
        pytest.param(0.0, 180.01, None, id="lon-high"),
        pytest.param(0.0, -180.01, None, id="lon-low"),
        pytest.param(math.nan, 0.0, None, id="lat-nan"),
        pytest.param(0.0, math.inf, None, id="lon-inf"),
        pytest.param(0.0, 0.0, -1.0, id="negative-radius"),
        pytest.param(0.0, 0.0, math.nan, id="nan-radius"),
    ],
)
def test_place_rejects_impossible_coordinates(lat: float, lon: float, radius: float | None) -> None:
    with pytest.raises(ValueError, match=r"range|radius"):
        Place(lat, lon, radius)


@pytest.mark.parametrize(
    ("lat", "lon"), [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)], ids=["ne", "sw", "null"]
)
def test_place_accepts_the_edges(lat: float, lon: float) -> None:
    assert Place(lat, lon, 0).radius_km == 0


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TravelEvent("naive", datetime(2018, 1, 1), 1)


# Arrival order (seq) differs from event order on purpose.
A = event("a", 100, LONDON, seq=4)
B = event("b", 200, SYDNEY, seq=1)
C1 = event("c1", 300, LONDON, seq=2)
C2 = event("c2", 300, SYDNEY, seq=5)
D = event("d", 400, None, seq=3, success=False)
ALL = [D, C2, B, A, C1]


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        pytest.param(A, Neighbours(None, B), id="first"),
        pytest.param(B, Neighbours(A, C1), id="middle"),
        pytest.param(C1, Neighbours(B, C2), id="tie-first-arrival"),
        pytest.param(C2, Neighbours(C1, D), id="tie-second-arrival"),
        pytest.param(D, Neighbours(C2, None), id="last"),
    ],
)
def test_neighbours_by_event_time_then_arrival(current: TravelEvent, expected: Neighbours) -> None:
    assert find_neighbours(ALL, current) == expected
    # The current event need not be in the list (it is about to be inserted).
    others = [e for e in ALL if e is not current]
    assert find_neighbours(others, current) == expected


def test_a_new_event_between_existing_ones() -> None:
    late = event("late", 250, LONDON, seq=6)
    assert find_neighbours(ALL, late) == Neighbours(B, C1)
    assert find_neighbours([*ALL, late], C1) == Neighbours(late, C2)


def test_sort_timeline() -> None:
    assert [e.key for e in sort_timeline(ALL)] == ["a", "b", "c1", "c2", "d"]
    assert sort_timeline([]) == []
