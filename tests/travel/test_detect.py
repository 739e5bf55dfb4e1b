"""Globeguard's graded verdict on one pair: thresholds, Δt floor, radii, unverifiable pairs and
the three false-positive controls. Which pair judges a login is tested in test_grading."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from datetime import timedelta

import pytest

from globeguard.settings import TravelSettings
from globeguard.travel.detect import (
    Control,
    Grade,
    Measurement,
    assess_pair,
    classify,
    lowered,
)
from globeguard.travel.geo_math import EARTH_RADIUS_MI, haversine_km, km_to_mi
from globeguard.travel.timeline import History, Place
from tests.travel.factories import (
    AMSTERDAM,
    KASSEL,
    LONDON,
    NO_CONTROLS,
    SETTLED,
    SYDNEY,
    US_CENTROID,
    US_EAST,
    at,
    equator,
    event,
    settled,
)

# --- classify: the grade from two speeds -------------------------------------------------


@pytest.mark.parametrize(
    ("speed", "adjusted", "threshold", "expected"),
    [
        pytest.param(0.0, 0.0, 500.0, Grade.PLAUSIBLE, id="standing-still"),
        pytest.param(499.99, 499.99, 500.0, Grade.PLAUSIBLE, id="just-under"),
        pytest.param(500.0, 500.0, 500.0, Grade.PLAUSIBLE, id="exactly-500-not-flagged"),
        pytest.param(500.01, 0.0, 500.0, Grade.SUSPICIOUS, id="500.01-centroids-only"),
        pytest.param(500.01, 500.0, 500.0, Grade.SUSPICIOUS, id="adjusted-exactly-500"),
        pytest.param(500.01, 500.01, 500.0, Grade.IMPOSSIBLE, id="500.01-both"),
        pytest.param(900.0, 400.0, 1000.0, Grade.PLAUSIBLE, id="configured-threshold"),
        pytest.param(1000.5, 1000.5, 1000.0, Grade.IMPOSSIBLE, id="configured-threshold-over"),
    ],
)
def test_classify_is_strictly_above_the_threshold(
    speed: float, adjusted: float, threshold: float, expected: Grade
) -> None:
    assert classify(speed, adjusted, threshold) is expected


@pytest.mark.parametrize(
    ("nudge", "expected"),
    [
        pytest.param(0.0, Grade.PLAUSIBLE, id="threshold-equals-speed"),
        pytest.param(-0.01, Grade.IMPOSSIBLE, id="threshold-0.01-below"),
        pytest.param(+0.01, Grade.PLAUSIBLE, id="threshold-0.01-above"),
    ],
)
def test_threshold_on_a_real_pair(nudge: float, expected: Grade) -> None:
    # 500 mi along the equator in one hour, radii absent: the speed is 500 up to rounding, so
    # set the threshold to exactly what was measured.
    lon = math.degrees(500 / EARTH_RADIUS_MI)
    a, b = event("a", 0, equator(0.0)), event("b", 3600, equator(lon), seq=1)
    measured = assess_pair(a, b, History(), NO_CONTROLS).reasons.measurement
    assert measured is not None and measured.speed_mph == pytest.approx(500.0)
    settings = replace_threshold(measured.speed_mph + nudge)
    assert assess_pair(a, b, History(), settings).grade is expected


def replace_threshold(threshold: float) -> TravelSettings:
    return NO_CONTROLS.model_copy(update={"speed_threshold_mph": threshold})


# --- Δt floor and same-second events ------------------------------------------------------


@pytest.mark.parametrize(
    ("t_a", "t_b", "place_b", "elapsed", "expected"),
    [
        pytest.param(100, 100, equator(0.01), 1.0, Grade.IMPOSSIBLE, id="same-second-0.69mi"),
        pytest.param(100, 100, equator(0.0), 1.0, Grade.PLAUSIBLE, id="same-second-same-place"),
        pytest.param(100.0, 100.4, equator(0.0), 1.0, Grade.PLAUSIBLE, id="sub-second-floored"),
        pytest.param(100, 101, equator(0.01), 1.0, Grade.IMPOSSIBLE, id="one-second"),
        pytest.param(100, 3700, equator(0.01), 3600.0, Grade.PLAUSIBLE, id="one-hour"),
    ],
)
def test_elapsed_time_is_floored_at_one_second(
    t_a: float, t_b: float, place_b: Place, elapsed: float, expected: Grade
) -> None:
    a, b = event("a", t_a, equator(0.0)), event("b", t_b, place_b, seq=1)
    verdict = assess_pair(a, b, History(), NO_CONTROLS)
    assert verdict.reasons.elapsed_seconds == elapsed
    assert verdict.grade is expected
    measured = verdict.reasons.measurement
    assert measured is not None and math.isfinite(measured.speed_mph)
    assert measured.speed_mph == pytest.approx(measured.distance_mi * 3600 / elapsed)


# --- accuracy radii ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("r_kassel", "r_amsterdam", "expected"),
    [
        pytest.param(100, 200, Grade.SUSPICIOUS, id="300km-of-radii-flip-to-suspicious"),
        pytest.param(0, 0, Grade.IMPOSSIBLE, id="zero-radii"),
        pytest.param(None, None, Grade.IMPOSSIBLE, id="no-radii-count-as-zero"),
        pytest.param(100, None, Grade.IMPOSSIBLE, id="one-missing-237km-left"),
        pytest.param(200, None, Grade.SUSPICIOUS, id="one-missing-137km-left"),
        pytest.param(None, 200, Grade.SUSPICIOUS, id="other-missing-137km-left"),
    ],
)
def test_radius_subtraction(r_kassel: int | None, r_amsterdam: int | None, expected: Grade) -> None:
    a = event("kassel", 0, replace(KASSEL, radius_km=r_kassel))
    b = event("amsterdam", 1000, replace(AMSTERDAM, radius_km=r_amsterdam), seq=1)
    verdict = assess_pair(a, b, History(), NO_CONTROLS)
    assert verdict.grade is expected
    measured = verdict.reasons.measurement
    assert measured is not None
    assert measured.speed_mph == pytest.approx(754.78, abs=0.01)
    radii = (r_kassel or 0) + (r_amsterdam or 0)
    assert measured.adjusted_distance_km == pytest.approx(337.415 - radii, abs=0.001)


def test_kassel_amsterdam_numbers() -> None:
    verdict = assess_pair(
        event("k", 0, KASSEL), event("a", 1000, AMSTERDAM, seq=1), History(), NO_CONTROLS
    )
    reasons = verdict.reasons
    assert reasons.as_dict() == {
        "distance_km": pytest.approx(337.415, abs=0.001),
        "distance_mi": pytest.approx(209.660, abs=0.001),
        "adjusted_distance_km": pytest.approx(37.415, abs=0.001),
        "adjusted_distance_mi": pytest.approx(23.249, abs=0.001),
        "speed_mph": pytest.approx(754.78, abs=0.01),
        "adjusted_speed_mph": pytest.approx(83.69, abs=0.01),
        "elapsed_seconds": 1000.0,
        "threshold_mph": 500.0,
        "origin": {"lat": 51.3167, "lon": 9.5, "radius_km": 100, "country": "DE",
                   "city": "Kassel"},
        "destination": {"lat": 52.3824, "lon": 4.8995, "radius_km": 200, "country": "NL",
                        "city": "Amsterdam"},
        "raw_grade": "suspicious",
        "lowered_by": None,
    }  # fmt: skip


def test_overlapping_radii_leave_no_distance() -> None:
    # Two r1000 points 1069 mi (1720 km) apart: the circles overlap by 280 km.
    a, b = event("a", 0, US_CENTROID), event("b", 3600, US_EAST, seq=1)
    verdict = assess_pair(a, b, History(), NO_CONTROLS)
    measured = verdict.reasons.measurement
    assert measured is not None
    assert measured.distance_mi == pytest.approx(1069.0)
    assert measured.speed_mph == pytest.approx(1069.0)
    assert measured.adjusted_distance_km == 0.0 and measured.adjusted_speed_mph == 0.0
    assert verdict.grade is Grade.SUSPICIOUS


# --- unverifiable ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("place_a", "place_b"),
    [
        pytest.param(None, LONDON, id="earlier-unlocatable"),
        pytest.param(LONDON, None, id="later-unlocatable"),
        pytest.param(None, None, id="both-unlocatable"),
    ],
)
def test_unlocatable_side_is_unverifiable(place_a: Place | None, place_b: Place | None) -> None:
    a, b = event("a", 0, place_a), event("b", 10, place_b, seq=1)
    for settings in (NO_CONTROLS, SETTLED):
        verdict = assess_pair(a, b, History(), settings)
        assert verdict.grade is Grade.UNVERIFIABLE
        assert verdict.reasons.raw_grade is Grade.UNVERIFIABLE
        assert verdict.reasons.lowered_by is None
        assert verdict.reasons.measurement is None
        assert verdict.reasons.elapsed_seconds == 10.0
        assert verdict.reasons.as_dict()["speed_mph"] is None


def test_pair_must_be_in_event_order() -> None:
    a, b = event("a", 0, LONDON, seq=1), event("b", 0, LONDON, seq=2)
    with pytest.raises(ValueError, match="does not precede"):
        assess_pair(b, a, History(), NO_CONTROLS)


# --- false-positive controls -------------------------------------------------------------

# London → Sydney in ten minutes: about 1 million mph, impossible on any radius.
FAR_EARLIER = event("london", 0, LONDON)
FAR_LATER = event("sydney", 600, SYDNEY, seq=1)
# 0.9° of longitude at the equator in a minute: 100.08 km, ~3731 mph, no radii.
NEAR_EARLIER = event("here", 0, equator(0.0))
NEAR_LATER = event("there", 60, equator(0.9), seq=1)
SEASONED = History(successes=10, first_success_at=at(-(10**8)))


@pytest.mark.parametrize(
    ("min_distance_km", "expected", "control"),
    [
        pytest.param(0.0, Grade.IMPOSSIBLE, None, id="off"),
        pytest.param(100.0, Grade.IMPOSSIBLE, None, id="100km-pair-is-100.08km"),
        pytest.param(100.1, Grade.PLAUSIBLE, Control.MIN_DISTANCE, id="100.1km"),
        pytest.param(300.0, Grade.PLAUSIBLE, Control.MIN_DISTANCE, id="300km"),
    ],
)
def test_min_distance(min_distance_km: float, expected: Grade, control: Control | None) -> None:
    settings = NO_CONTROLS.model_copy(update={"min_distance_km": min_distance_km})
    verdict = assess_pair(NEAR_EARLIER, NEAR_LATER, SEASONED, settings)
    assert verdict.grade is expected
    assert verdict.reasons.lowered_by is control
    assert verdict.reasons.raw_grade is Grade.IMPOSSIBLE


def test_min_distance_uses_the_centroid_distance() -> None:
    measured = assess_pair(NEAR_EARLIER, NEAR_LATER, SEASONED, NO_CONTROLS).reasons.measurement
    assert measured is not None
    assert measured.distance_km == pytest.approx(haversine_km(0, 0, 0, 0.9))
    assert measured.distance_km == pytest.approx(100.08, abs=0.01)


SYDNEY_SUBURB = Place(-33.80, 151.00)  # ~21 km from the Sydney centroid
CANBERRA = Place(-35.28, 149.13)  # ~248 km from Sydney


@pytest.mark.parametrize(
    ("radius_km", "known", "expected", "control"),
    [
        pytest.param(0.0, (SYDNEY,), Grade.IMPOSSIBLE, None, id="off"),
        pytest.param(50.0, (), Grade.IMPOSSIBLE, None, id="nothing-known"),
        pytest.param(50.0, (SYDNEY,), Grade.PLAUSIBLE, Control.KNOWN_LOCATION, id="same-place"),
        pytest.param(50.0, (CANBERRA, SYDNEY_SUBURB), Grade.PLAUSIBLE, Control.KNOWN_LOCATION,
                     id="within-50km"),
        pytest.param(20.0, (SYDNEY_SUBURB,), Grade.IMPOSSIBLE, None, id="outside-20km"),
        pytest.param(50.0, (CANBERRA,), Grade.IMPOSSIBLE, None, id="248km-away"),
        pytest.param(50.0, (LONDON,), Grade.IMPOSSIBLE, None, id="only-the-origin-is-known"),
    ],
)  # fmt: skip
def test_known_location(
    radius_km: float, known: tuple[Place, ...], expected: Grade, control: Control | None
) -> None:
    settings = NO_CONTROLS.model_copy(update={"known_location_radius_km": radius_km})
    history = replace(SEASONED, known_places=known)
    verdict = assess_pair(FAR_EARLIER, FAR_LATER, history, settings)
    assert verdict.grade is expected
    assert verdict.reasons.lowered_by is control
    assert verdict.reasons.raw_grade is Grade.IMPOSSIBLE


DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("logins", "period", "successes", "first_days_before", "expected", "control"),
    [
        pytest.param(0, timedelta(0), 0, None, Grade.IMPOSSIBLE, None, id="off"),
        pytest.param(3, timedelta(0), 0, None, Grade.SUSPICIOUS, Control.LEARNING,
                     id="first-success"),
        pytest.param(3, timedelta(0), 2, 30, Grade.SUSPICIOUS, Control.LEARNING, id="2-of-3"),
        pytest.param(3, timedelta(0), 3, 30, Grade.IMPOSSIBLE, None, id="3-of-3-learnt"),
        pytest.param(0, 14 * DAY, 50, 13, Grade.SUSPICIOUS, Control.LEARNING, id="day-13-of-14"),
        pytest.param(0, 14 * DAY, 50, 14, Grade.IMPOSSIBLE, None, id="day-14-of-14-learnt"),
        pytest.param(0, 14 * DAY, 0, None, Grade.SUSPICIOUS, Control.LEARNING,
                     id="period-not-started"),
        # Learning lasts while either is short, so it ends once both are met (Entra stops at
        # whichever comes first instead).
        pytest.param(10, 14 * DAY, 10, 13, Grade.SUSPICIOUS, Control.LEARNING,
                     id="enough-logins-too-early"),
        pytest.param(10, 14 * DAY, 9, 20, Grade.SUSPICIOUS, Control.LEARNING,
                     id="late-enough-too-few"),
        pytest.param(10, 14 * DAY, 10, 20, Grade.IMPOSSIBLE, None, id="both-met"),
    ],
)  # fmt: skip
def test_learning(
    logins: int,
    period: timedelta,
    successes: int,
    first_days_before: int | None,
    expected: Grade,
    control: Control | None,
) -> None:
    settings = NO_CONTROLS.model_copy(update={"learning_logins": logins, "learning_period": period})
    first = None if first_days_before is None else FAR_LATER.occurred_at - first_days_before * DAY
    history = History(successes=successes, first_success_at=first)
    verdict = assess_pair(FAR_EARLIER, FAR_LATER, history, settings)
    assert verdict.grade is expected
    assert verdict.reasons.lowered_by is control


@pytest.mark.parametrize(
    ("settings", "control"),
    [
        pytest.param(settled(min_distance_km=200, known_location_radius_km=500),
                     Control.MIN_DISTANCE, id="min-distance-first"),
        pytest.param(settled(min_distance_km=0, known_location_radius_km=500),
                     Control.KNOWN_LOCATION, id="then-known-location"),
        pytest.param(settled(min_distance_km=0, known_location_radius_km=0),
                     Control.LEARNING, id="then-learning"),
    ],
)  # fmt: skip
def test_first_applicable_control_is_named(settings: TravelSettings, control: Control) -> None:
    history = History(known_places=(NEAR_EARLIER.place,) if NEAR_EARLIER.place else ())
    verdict = assess_pair(NEAR_EARLIER, NEAR_LATER, history, settings)
    assert verdict.grade is lowered(verdict.reasons.raw_grade, control)
    assert verdict.reasons.lowered_by is control


@pytest.mark.parametrize(
    ("raw", "control", "expected"),
    [
        (Grade.IMPOSSIBLE, None, Grade.IMPOSSIBLE),
        (Grade.SUSPICIOUS, None, Grade.SUSPICIOUS),
        (Grade.IMPOSSIBLE, Control.MIN_DISTANCE, Grade.PLAUSIBLE),
        (Grade.SUSPICIOUS, Control.KNOWN_LOCATION, Grade.PLAUSIBLE),
        (Grade.IMPOSSIBLE, Control.LEARNING, Grade.SUSPICIOUS),
        (Grade.SUSPICIOUS, Control.LEARNING, Grade.PLAUSIBLE),
        (Grade.IMPOSSIBLE, Control.KNOWN_NETWORK, Grade.SUSPICIOUS),
    ],
)
def test_what_each_control_makes_of_a_fast_grade(
    raw: Grade, control: Control | None, expected: Grade
) -> None:
    assert lowered(raw, control) is expected


@pytest.mark.parametrize(
    ("later_asn", "networks", "expected", "control"),
    [
        pytest.param(64500, frozenset({64500}), Grade.SUSPICIOUS, Control.KNOWN_NETWORK,
                     id="own-network"),
        pytest.param(64501, frozenset({64500}), Grade.IMPOSSIBLE, None, id="other-network"),
        pytest.param(None, frozenset({64500}), Grade.IMPOSSIBLE, None, id="no-asn-database"),
    ],
)  # fmt: skip
def test_a_known_network_caps_an_impossible_journey_at_suspicious(
    later_asn: int | None, networks: frozenset[int], expected: Grade, control: Control | None
) -> None:
    settings = NO_CONTROLS
    later = replace(FAR_LATER, asn=later_asn)
    verdict = assess_pair(FAR_EARLIER, later, History(known_networks=networks), settings)
    assert verdict.reasons.raw_grade is Grade.IMPOSSIBLE
    assert verdict.grade is expected
    assert verdict.reasons.lowered_by is control


def test_controls_only_lower_fast_pairs() -> None:
    # Plausible stays plausible with no control named, even while learning.
    a, b = event("a", 0, LONDON), event("b", 86_400, SYDNEY, seq=1)
    verdict = assess_pair(a, b, History(), SETTLED)
    assert verdict.grade is Grade.PLAUSIBLE
    assert verdict.reasons.raw_grade is Grade.PLAUSIBLE
    assert verdict.reasons.lowered_by is None


def test_default_settings() -> None:
    # Defaults: 500 mph, 100 km, 50 km, 3 sign-ins and a week (bench/detection.py chose it).
    defaults = TravelSettings()
    assert (defaults.speed_threshold_mph, defaults.min_distance_km) == (500.0, 100.0)
    assert (defaults.known_location_radius_km, defaults.learning_logins) == (50.0, 3)
    assert defaults.learning_period == timedelta(days=7)
    assert (defaults.known_place_days, defaults.known_place_memory) == (3, timedelta(days=90))
    week_ago = FAR_LATER.occurred_at - timedelta(days=7)
    learnt = History(successes=3, first_success_at=week_ago)
    assert assess_pair(FAR_EARLIER, FAR_LATER, learnt, defaults).grade is Grade.IMPOSSIBLE
    for fresh in (
        History(successes=2, first_success_at=week_ago),
        History(successes=30, first_success_at=week_ago + timedelta(seconds=1)),
    ):
        verdict = assess_pair(FAR_EARLIER, FAR_LATER, fresh, defaults)
        assert verdict.reasons.lowered_by is Control.LEARNING
        assert verdict.grade is Grade.SUSPICIOUS


def test_reason_distances_are_consistent() -> None:
    verdict = assess_pair(FAR_EARLIER, FAR_LATER, History(), NO_CONTROLS)
    measured = verdict.reasons.measurement
    assert measured is not None
    assert measured.distance_mi == pytest.approx(km_to_mi(measured.distance_km))
    assert measured.distance_mi == pytest.approx(10_560, rel=0.01)  # London-Sydney
    assert verdict.as_dict()["earlier"] == "london"
    assert verdict.as_dict()["later"] == "sydney"
    assert verdict.as_dict()["grade"] == "impossible"


def test_reasons_name_every_measurement_and_place_field() -> None:
    pair = assess_pair(
        event("a", 0, LONDON, seq=1), event("b", 3600, SYDNEY, seq=2), History(), NO_CONTROLS
    )
    reasons = pair.as_dict()
    assert {f.name for f in fields(Measurement)} <= reasons.keys()
    assert reasons["origin"].keys() == {f.name for f in fields(Place)}
    assert reasons["destination"]["city"] == "Sydney"
