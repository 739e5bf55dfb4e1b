"""Properties of the detection core, checked by hypothesis: the distance is a metric-like
quantity on the sphere, speeds and flags do not depend on which side of a pair is asked, and
the final neighbours and verdicts do not depend on the order events were posted in."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from globeguard.settings import TravelSettings
from globeguard.travel.detect import (
    EventAssessment,
    assess_event,
    assess_pair,
    assess_timeline,
    measure,
)
from globeguard.travel.geo_math import EARTH_RADIUS_KM, haversine_km
from globeguard.travel.superman_view import superman_view
from globeguard.travel.timeline import (
    History,
    Place,
    TravelEvent,
    find_neighbours,
    history_before,
    sort_timeline,
)
from tests.travel.factories import (
    AMSTERDAM,
    KASSEL,
    LONDON,
    NO_CONTROLS,
    SYDNEY,
    US_CENTROID,
    US_EAST,
    at,
)

lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)
radii = st.one_of(st.none(), st.integers(0, 1000))
random_places = st.builds(Place, lats, lons, radii)
# Mostly a few real cities, so pairs at zero distance and below the threshold happen often.
POOL = (LONDON, SYDNEY, KASSEL, AMSTERDAM, US_CENTROID, US_EAST)
places = st.one_of(st.sampled_from(POOL), st.none(), random_places)
WITH_CONTROLS = TravelSettings(
    min_distance_km=100, known_location_radius_km=300, learning_logins=2
)  # fmt: skip
settings_choices = st.sampled_from([NO_CONTROLS, TravelSettings(), WITH_CONTROLS])


# --- distance and speed -------------------------------------------------------------------


@given(lats, lons, lats, lons)
def test_haversine_is_symmetric_and_bounded(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    there = haversine_km(lat1, lon1, lat2, lon2)
    back = haversine_km(lat2, lon2, lat1, lon1)
    assert there == back
    assert 0.0 <= there <= math.pi * EARTH_RADIUS_KM


@given(lats, lons)
def test_haversine_of_a_point_to_itself_is_zero(lat: float, lon: float) -> None:
    assert haversine_km(lat, lon, lat, lon) == 0.0


@given(random_places, random_places, st.floats(1, 10**7))
def test_measurement_is_symmetric(a: Place, b: Place, seconds: float) -> None:
    there, back = measure(a, b, seconds), measure(b, a, seconds)
    assert there == back
    assert 0.0 <= there.adjusted_distance_km <= there.distance_km
    assert there.adjusted_speed_mph <= there.speed_mph


@given(places, places, st.integers(0, 20_000), st.integers(0, 20_000))
def test_flags_do_not_depend_on_which_side_asks(
    place_a: Place | None, place_b: Place | None, t_a: int, t_b: int
) -> None:
    a = TravelEvent("a", at(t_a), 1, place_a)
    b = TravelEvent("b", at(t_b), 2, place_b)
    earlier, later = sorted((a, b), key=lambda e: e.order)
    from_earlier = superman_view(earlier, find_neighbours([a, b], earlier))
    from_later = superman_view(later, find_neighbours([a, b], later))
    assert from_earlier.subsequent is not None and from_later.preceding is not None
    assert from_earlier.subsequent.speed_mph == from_later.preceding.speed_mph
    assert (
        from_earlier.travel_from_current_geo_suspicious
        is from_later.travel_to_current_geo_suspicious
    )
    # Swapping where the two were (same times) leaves the raw grade unchanged.
    swapped_earlier = replace(earlier, place=later.place)
    swapped_later = replace(later, place=earlier.place)
    straight = assess_pair(earlier, later, History(), NO_CONTROLS)
    swapped = assess_pair(swapped_earlier, swapped_later, History(), NO_CONTROLS)
    assert straight.grade is swapped.grade
    assert straight.reasons.measurement == swapped.reasons.measurement


# --- posting order ------------------------------------------------------------------------

Spec = tuple[int, Place | None, bool]  # (unix time, place, success)


def spec_lists(times: st.SearchStrategy[int], unique: bool) -> st.SearchStrategy[list[Spec]]:
    spec = st.tuples(times, places, st.booleans())
    return st.lists(spec, min_size=1, max_size=8, unique_by=(lambda s: s[0]) if unique else None)


@st.composite
def posted_twice(
    draw: st.DrawFn, times: st.SearchStrategy[int], unique: bool
) -> tuple[list[Spec], list[int], list[int]]:
    specs = draw(spec_lists(times, unique))
    indices = list(range(len(specs)))
    return specs, draw(st.permutations(indices)), draw(st.permutations(indices))


def post(specs: Sequence[Spec], order: Sequence[int]) -> list[TravelEvent]:
    """Events as stored after posting `specs` in `order`: arrival_seq is the posting rank."""
    return [
        TravelEvent(f"e{i}", at(specs[i][0]), rank, specs[i][1], specs[i][2])
        for rank, i in enumerate(order)
    ]


def requery(events: Sequence[TravelEvent], settings: TravelSettings) -> dict[str, Any]:
    """Every event queried again once all are posted: neighbours, seed flags, verdicts."""
    result: dict[str, Any] = {}
    for current in events:
        near = find_neighbours(events, current)
        view = superman_view(current, near, settings.speed_threshold_mph)
        result[current.key] = (
            tuple(None if n is None else n.key for n in (near.preceding, near.subsequent)),
            tuple(None if a is None else a.speed for a in (view.preceding, view.subsequent)),
            view.travel_to_current_geo_suspicious,
            view.travel_from_current_geo_suspicious,
            assess_event(current, near, history_before(events, current), settings),
        )
    return result


@given(posted_twice(st.integers(0, 10**6), unique=True), settings_choices)
def test_distinct_times_any_posting_order_gives_the_same_result(
    posted: tuple[list[Spec], list[int], list[int]], settings: TravelSettings
) -> None:
    specs, first, second = posted
    assert requery(post(specs, first), settings) == requery(post(specs, second), settings)


def same_order_within_ties(
    specs: Sequence[Spec], reference: list[int], other: list[int]
) -> list[int]:
    """`other`, with each group of same-second events rearranged into `reference`'s order."""
    result = list(other)
    for time in {s[0] for s in specs}:
        members = [i for i in reference if specs[i][0] == time]
        slots = sorted(pos for pos, i in enumerate(other) if specs[i][0] == time)
        for slot, member in zip(slots, members, strict=True):
            result[slot] = member
    return result


TIES = st.integers(0, 4).map(lambda k: k * 900)  # at most 5 distinct seconds for 8 events


@given(posted_twice(TIES, unique=False), settings_choices)
def test_with_ties_only_the_order_within_each_second_matters(
    posted: tuple[list[Spec], list[int], list[int]], settings: TravelSettings
) -> None:
    specs, first, second = posted
    aligned = same_order_within_ties(specs, first, second)
    assert requery(post(specs, first), settings) == requery(post(specs, aligned), settings)


@given(posted_twice(TIES, unique=False), settings_choices)
def test_with_ties_events_away_from_ties_are_unaffected(
    posted: tuple[list[Spec], list[int], list[int]], settings: TravelSettings
) -> None:
    # An event whose own second and both adjacent seconds hold one event each sees the same
    # neighbours and verdicts whatever the posting order.
    specs, first, second = posted
    results = requery(post(specs, first), settings), requery(post(specs, second), settings)
    times = sorted({s[0] for s in specs})
    count = {t: sum(1 for s in specs if s[0] == t) for t in times}
    for i, (time, _, _) in enumerate(specs):
        k = times.index(time)
        around = times[max(0, k - 1) : k + 2]
        if all(count[t] == 1 for t in around):
            assert results[0][f"e{i}"] == results[1][f"e{i}"]


@st.composite
def repeated_sign_ins(draw: st.DrawFn) -> tuple[list[Spec], list[int], list[int]]:
    """Identical sign-ins repeated in the same second (a double submit, a retry)."""
    originals = draw(spec_lists(st.integers(0, 10**5), unique=True))
    specs = [s for s in originals for _ in range(draw(st.integers(1, 3)))]
    indices = list(range(len(specs)))
    return specs, draw(st.permutations(indices)), draw(st.permutations(indices))


def anonymous(assessment: EventAssessment) -> tuple[Any, ...]:
    pairs = (assessment.preceding, assessment.subsequent)
    return assessment.grade, *(None if p is None else (p.grade, p.reasons) for p in pairs)


@given(repeated_sign_ins(), settings_choices)
def test_identical_same_second_events_are_interchangeable(
    posted: tuple[list[Spec], list[int], list[int]], settings: TravelSettings
) -> None:
    # Which copy is which depends on the posting order, but the timeline reads the same.
    specs, first, second = posted
    timelines = [assess_timeline(post(specs, order), settings) for order in (first, second)]
    assert [anonymous(a) for a in timelines[0]] == [anonymous(a) for a in timelines[1]]


# --- keeping stored verdicts up to date as events arrive ----------------------------------

Recipe = Callable[[list[TravelEvent], TravelEvent], list[TravelEvent]]


def neighbours_only(events: list[TravelEvent], new: TravelEvent) -> list[TravelEvent]:
    near = find_neighbours(events, new)
    return [e for e in (near.preceding, new, near.subsequent) if e is not None]


def from_preceding_on(events: list[TravelEvent], new: TravelEvent) -> list[TravelEvent]:
    start = find_neighbours(events, new).preceding or new
    return [e for e in events if e.order >= start.order]


def maintain(
    events: list[TravelEvent], settings: TravelSettings, recipe: Recipe
) -> dict[str, tuple[Any, ...]]:
    """Post events one by one, re-assessing only what `recipe` says after each arrival."""
    stored: dict[str, tuple[Any, ...]] = {}
    posted: list[TravelEvent] = []
    for new in events:
        posted.append(new)
        for e in recipe(posted, new):
            near = find_neighbours(posted, e)
            view = superman_view(e, near, settings.speed_threshold_mph)
            graded = assess_event(e, near, history_before(posted, e), settings)
            flags = view.travel_to_current_geo_suspicious, view.travel_from_current_geo_suspicious
            stored[e.key] = (flags, graded)
    return stored


def from_scratch(events: list[TravelEvent], settings: TravelSettings) -> dict[str, Any]:
    graded = {a.key: a for a in assess_timeline(events, settings)}
    fresh = {}
    for e in sort_timeline(events):
        view = superman_view(e, find_neighbours(events, e), settings.speed_threshold_mph)
        flags = view.travel_to_current_geo_suspicious, view.travel_from_current_geo_suspicious
        fresh[e.key] = (flags, graded[e.key])
    return fresh


@given(posted_twice(st.integers(0, 10**5), unique=False))
def test_reassessing_the_new_event_and_its_neighbours_suffices_without_history(
    posted: tuple[list[Spec], list[int], list[int]],
) -> None:
    # With only history-free controls (speed, radii, min_distance), an arrival changes the
    # verdicts of itself and its two neighbours and nothing else.
    specs, order, _ = posted
    settings = NO_CONTROLS.model_copy(update={"min_distance_km": 100})
    events = post(specs, order)
    assert maintain(events, settings, neighbours_only) == from_scratch(events, settings)


@given(posted_twice(st.integers(0, 10**5), unique=False), settings_choices)
def test_reassessing_from_the_preceding_neighbour_on_suffices_with_history(
    posted: tuple[list[Spec], list[int], list[int]], settings: TravelSettings
) -> None:
    # Learning and known places depend on every earlier success, so a late arrival can change
    # any later event's verdict: re-assess from its preceding neighbour to the end.
    specs, order, _ = posted
    events = post(specs, order)
    assert maintain(events, settings, from_preceding_on) == from_scratch(events, settings)
