"""The shortcuts grading takes for speed give what the long way gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from globeguard.travel.detect import (
    MEASUREMENT_KEYS,
    NOWHERE,
    _numbers,
    measure,
    measure_apart,
)
from globeguard.travel.timeline import Place
from tests.travel.factories import lats, lons, radii


@given(lats, lons, radii, radii, st.floats(1.0, 1e9))
def test_two_logins_at_one_point_measure_as_the_formula_does(
    lat: float, lon: float, r1: int | None, r2: int | None, seconds: float
) -> None:
    here, there = Place(lat, lon, r1, "DE"), Place(lat, lon, r2, "FR", "Elsewhere")
    assert measure(here, there, seconds) == measure_apart(here, there, seconds) == NOWHERE


def test_the_measurement_keys_name_the_numbers_in_order() -> None:
    assert tuple(_numbers(NOWHERE)) == MEASUREMENT_KEYS
