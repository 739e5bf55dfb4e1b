"""Properties of the detection core, checked by hypothesis: the distance is a metric-like
quantity on the sphere, speeds and flags do not depend on which side of a pair is asked, the
final neighbours, Superman flags and graded verdicts do not depend on the order events were
posted in (beyond the arrival order among events of one second), and re-judging what a new
arrival can change keeps stored verdicts equal to grading from scratch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from globeguard.settings import TravelSettings
from globeguard.travel.detect import assess_pair, measure
from globeguard.travel.geo_math import EARTH_RADIUS_KM, haversine_km
from globeguard.travel.grading import Verdict
from globeguard.travel.profile import Profile, judge_timeline
from globeguard.travel.superman_view import superman_view
from globeguard.travel.timeline import (
    History,
    Place,
    TravelEvent,
    find_neighbours,
    sort_timeline,
)
from tests.travel.factories import (
    NO_CONTROLS,
    TIES,
    Spec,
    at,
    lats,
    lons,
    places,
    post,
    random_places,
    settings_choices,
    spec_lists,
)

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

Posted = tuple[list[Spec], list[int], list[int]]  # specs and two posting orders


@st.composite
def posted_twice(draw: st.DrawFn, times: st.SearchStrategy[int], unique: bool) -> Posted:
    specs = draw(spec_lists(times, unique))
    indices = list(range(len(specs)))
    return specs, draw(st.permutations(indices)), draw(st.permutations(indices))


def requery(events: Sequence[TravelEvent]) -> dict[str, Any]:
    """The Superman view of every event queried again once all are posted: neighbours,
    truncated speeds and flags."""
    result: dict[str, Any] = {}
    for current in events:
        near = find_neighbours(events, current)
        view = superman_view(current, near)
        result[current.key] = (
            tuple(None if n is None else n.key for n in (near.preceding, near.subsequent)),
            tuple(None if a is None else a.speed for a in (view.preceding, view.subsequent)),
            view.travel_to_current_geo_suspicious,
            view.travel_from_current_geo_suspicious,
        )
    return result


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


@given(posted_twice(st.integers(0, 10**6), unique=True))
def test_distinct_times_any_posting_order_gives_the_same_neighbours_and_flags(
    posted: Posted,
) -> None:
    specs, first, second = posted
    assert requery(post(specs, first)) == requery(post(specs, second))


@given(posted_twice(TIES, unique=False))
def test_with_ties_only_the_order_within_each_second_matters_to_the_flags(
    posted: Posted,
) -> None:
    specs, first, second = posted
    aligned = same_order_within_ties(specs, first, second)
    assert requery(post(specs, first)) == requery(post(specs, aligned))


def alone_with_lone_neighbours(specs: Sequence[Spec]) -> list[int]:
    """Events whose own second and both adjacent seconds hold one event each."""
    times = sorted({s[0] for s in specs})
    count = {t: sum(1 for s in specs if s[0] == t) for t in times}
    chosen = []
    for i, (time, _, _) in enumerate(specs):
        k = times.index(time)
        if all(count[t] == 1 for t in times[max(0, k - 1) : k + 2]):
            chosen.append(i)
    return chosen


@given(posted_twice(TIES, unique=False))
def test_with_ties_events_away_from_ties_keep_their_neighbours_and_flags(
    posted: Posted,
) -> None:
    specs, first, second = posted
    results = requery(post(specs, first)), requery(post(specs, second))
    for i in alone_with_lone_neighbours(specs):
        assert results[0][f"e{i}"] == results[1][f"e{i}"]


# The graded verdicts: judge_timeline reads only the event order (time, then arrival among
# events of one second), so posting order matters exactly where it breaks a tie.


@given(posted_twice(st.integers(0, 10**6), unique=True), settings_choices)
def test_distinct_times_any_posting_order_gives_the_same_verdicts(
    posted: Posted, settings: TravelSettings
) -> None:
    specs, first, second = posted
    verdicts = [judge_timeline(post(specs, order), settings) for order in (first, second)]
    assert verdicts[0] == verdicts[1]


@given(posted_twice(TIES, unique=False), settings_choices)
def test_with_ties_only_the_order_within_each_second_matters_to_the_verdicts(
    posted: Posted, settings: TravelSettings
) -> None:
    specs, first, second = posted
    aligned = same_order_within_ties(specs, first, second)
    verdicts = [judge_timeline(post(specs, order), settings) for order in (first, aligned)]
    assert verdicts[0] == verdicts[1]


def unambiguous_logins(specs: Sequence[Spec]) -> list[int]:
    """Logins whose verdict no tie can touch: alone in their second, and every earlier second
    holds at most one success. (Which of two same-second successes comes first decides which
    is flagged, so which is trusted, and so the anchor and known places of everything after;
    failures teach nothing, so ties among them change no other verdict.)"""
    chosen = []
    for i, (time, _, _) in enumerate(specs):
        if sum(1 for s in specs if s[0] == time) > 1:
            continue
        earlier = {s[0] for s in specs if s[0] < time and s[2]}
        if all(sum(1 for s in specs if s[0] == second and s[2]) == 1 for second in earlier):
            chosen.append(i)
    return chosen


@given(posted_twice(TIES, unique=False), settings_choices)
def test_with_ties_a_login_with_an_unambiguous_anchor_keeps_its_verdict(
    posted: Posted, settings: TravelSettings
) -> None:
    specs, first, second = posted
    verdicts = [judge_timeline(post(specs, order), settings) for order in (first, second)]
    for i in unambiguous_logins(specs):
        assert verdicts[0][f"e{i}"] == verdicts[1][f"e{i}"]


@st.composite
def repeated_sign_ins(draw: st.DrawFn) -> Posted:
    """Identical sign-ins repeated in the same second (a double submit, a retry)."""
    originals = draw(spec_lists(st.integers(0, 10**5), unique=True))
    specs = [s for s in originals for _ in range(draw(st.integers(1, 3)))]
    indices = list(range(len(specs)))
    return specs, draw(st.permutations(indices)), draw(st.permutations(indices))


def anonymous(verdict: Verdict) -> tuple[Any, ...]:
    """A verdict without the keys of the two logins it joins."""
    grade, reasons = verdict
    if reasons is None:
        return (grade, None)
    return grade, {k: v for k, v in reasons.items() if k not in ("earlier", "later")}


@given(repeated_sign_ins(), settings_choices)
def test_identical_same_second_events_are_interchangeable(
    posted: Posted, settings: TravelSettings
) -> None:
    # Which copy is which depends on the posting order, but the timeline reads the same.
    specs, first, second = posted
    readings = []
    for order in (first, second):
        events = post(specs, order)
        verdicts = judge_timeline(events, settings)
        readings.append([anonymous(verdicts[e.key]) for e in sort_timeline(events)])
    assert readings[0] == readings[1]


# --- keeping stored results up to date as events arrive -----------------------------------


def maintain_flags(events: list[TravelEvent]) -> dict[str, Any]:
    """Post events one by one, re-querying only the new event and its two neighbours."""
    stored: dict[str, Any] = {}
    posted: list[TravelEvent] = []
    for new in events:
        posted.append(new)
        near = find_neighbours(posted, new)
        for e in (near.preceding, new, near.subsequent):
            if e is not None:
                stored[e.key] = requery(posted)[e.key]
    return stored


@given(posted_twice(st.integers(0, 10**5), unique=False))
def test_requerying_the_new_event_and_its_neighbours_keeps_the_flags_current(
    posted: Posted,
) -> None:
    specs, order, _ = posted
    events = post(specs, order)
    assert maintain_flags(events) == requery(events)


Rejudge = Callable[[list[TravelEvent], TravelEvent], list[TravelEvent]]


def every_later_login(posted: list[TravelEvent], new: TravelEvent) -> list[TravelEvent]:
    return [e for e in posted if e.order > new.order]


def maintain_verdicts(
    events: list[TravelEvent], settings: TravelSettings, rejudge: Rejudge
) -> dict[str, Verdict]:
    """Post events one by one as the service does: judge the new login from the profile
    rebuilt from the stored events before it (with the verdicts they hold), then re-judge what
    `rejudge` picks after it from that profile moved past it."""
    stored: dict[str, Verdict] = {}
    posted: list[TravelEvent] = []
    for new in events:
        posted.append(new)
        before = [e for e in sort_timeline(posted) if e.order < new.order]
        profile = Profile().replayed([(e, stored[e.key][0]) for e in before], settings)
        stored[new.key] = verdict = profile.judge([new], settings)[0][new.key]
        later = sort_timeline(rejudge(posted, new))
        if later:
            moved = profile.after(new, verdict[0], settings)
            stored |= moved.judge(later, settings)[0]
    return stored


@given(posted_twice(st.integers(0, 10**5), unique=False), settings_choices)
def test_with_history_controls_rejudging_every_later_login_suffices(
    posted: Posted, settings: TravelSettings
) -> None:
    # Learning and known places depend on every earlier success, so a late success can change
    # any later login's verdict: re-judge everything after it.
    specs, order, _ = posted
    events = post(specs, order)
    maintained = maintain_verdicts(events, settings, every_later_login)
    assert maintained == judge_timeline(events, settings)
