"""Which journey judges a login: the one from the subject's last successful login before it.
Failed attempts are judged but never anchor another login, and only successes teach the
false-positive controls. Also: same-second logins, late arrivals, and grading a suffix."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.settings import TravelSettings
from globeguard.travel.detect import Control, Grade
from globeguard.travel.grading import Verdict, judge
from globeguard.travel.profile import Profile, judge_timeline
from globeguard.travel.timeline import (
    History,
    Neighbours,
    TravelEvent,
    find_neighbours,
    sort_timeline,
)
from tests.travel.factories import (
    LONDON,
    NO_CONTROLS,
    SETTLED,
    SYDNEY,
    TIES,
    WASHINGTON,
    ZHENGZHOU,
    equator,
    event,
    history_of,
    post,
    settings_choices,
    settled,
    spec_lists,
)

MINUTE, DAY = 60, 86_400


def grades(verdicts: dict[str, Verdict]) -> dict[str, Grade]:
    return {key: grade for key, (grade, _) in verdicts.items()}


def anchor_of(verdict: Verdict) -> str | None:
    reasons = verdict[1]
    return None if reasons is None else reasons["earlier"]


# --- the anchor: the last success before ------------------------------------------------


def test_a_login_with_nothing_before_it_has_grade_none() -> None:
    only = event("only", 0, LONDON)
    assert judge(only, None, History(), SETTLED) == (Grade.NONE, None)
    assert judge_timeline([only], SETTLED) == {"only": (Grade.NONE, None)}
    assert judge_timeline([], SETTLED) == {}


def test_successes_anchor_the_next_journey() -> None:
    # London → Sydney in a day is 440 mph; then a minute later, the same place.
    a, b = event("a", 0, LONDON, seq=1), event("b", DAY, SYDNEY, seq=2)
    c = event("c", DAY + MINUTE, SYDNEY, seq=3)
    verdicts = judge_timeline([c, a, b], NO_CONTROLS)
    assert grades(verdicts) == {"a": Grade.NONE, "b": Grade.PLAUSIBLE, "c": Grade.PLAUSIBLE}
    assert [anchor_of(verdicts[k]) for k in "abc"] == [None, "a", "b"]
    assert verdicts["b"] == judge(b, a, history_of(a), NO_CONTROLS)


def test_a_failed_try_from_the_new_place_does_not_vouch_for_the_next_login() -> None:
    home = event("home", 0, LONDON, seq=1)
    tries = [
        event(f"try{i}", (10 + i) * MINUTE, SYDNEY, seq=2 + i, success=False) for i in range(2)
    ]
    signed_in = event("in", 12 * MINUTE, SYDNEY, seq=4)
    verdicts = judge_timeline([home, *tries, signed_in], NO_CONTROLS)
    # Each failure is judged, from the last success before it, not from the failure before.
    assert [anchor_of(verdicts[t.key]) for t in tries] == ["home", "home"]
    assert all(verdicts[t.key][0] is Grade.IMPOSSIBLE for t in tries)
    # The success is still measured from London, as if the failures had not happened.
    assert anchor_of(verdicts["in"]) == "home"
    assert verdicts["in"] == judge(signed_in, home, history_of(home), NO_CONTROLS)
    assert verdicts["in"][0] is Grade.IMPOSSIBLE


def test_a_failure_with_no_success_before_it_has_grade_none() -> None:
    failed = event("failed", 0, LONDON, seq=1, success=False)
    first = event("first", MINUTE, SYDNEY, seq=2)
    after = event("after", 2 * MINUTE, LONDON, seq=3, success=False)
    verdicts = judge_timeline([failed, first, after], NO_CONTROLS)
    assert grades(verdicts) == {
        "failed": Grade.NONE,
        "first": Grade.NONE,  # the failure before it anchors nothing
        "after": Grade.IMPOSSIBLE,
    }


def test_same_second_logins_are_ordered_by_arrival() -> None:
    first = event("first", 500, LONDON, seq=1)
    second = event("second", 500, SYDNEY, seq=2)
    later = event("later", 900, LONDON, seq=3)
    timeline = [later, second, first]
    assert find_neighbours(timeline, second) == Neighbours(first, later)
    assert find_neighbours(timeline, first) == Neighbours(None, second)
    verdicts = judge_timeline(timeline, NO_CONTROLS)
    assert [e.key for e in sort_timeline(timeline)] == ["first", "second", "later"]
    assert anchor_of(verdicts["second"]) == "first"
    reasons = verdicts["second"][1]
    assert reasons is not None and reasons["elapsed_seconds"] == 1.0  # the Δt floor
    assert verdicts["second"][0] is Grade.IMPOSSIBLE
    # Sydney was flagged, so it anchors nothing: "later" is measured from London.
    assert anchor_of(verdicts["later"]) == "first"
    assert verdicts["later"][0] is Grade.PLAUSIBLE
    # Had Sydney arrived first, London would be judged from it instead.
    reordered = [replace(first, arrival_seq=3), second, replace(later, arrival_seq=4)]
    swapped = judge_timeline(reordered, NO_CONTROLS)
    assert anchor_of(swapped["first"]) == "second"
    assert anchor_of(swapped["later"]) == "second"
    assert grades(swapped) == {
        "second": Grade.NONE,
        "first": Grade.IMPOSSIBLE,
        "later": Grade.IMPOSSIBLE,  # Sydney → London in 400 s
    }


@pytest.mark.parametrize(
    ("nowhere_succeeded", "expected_sydney", "sydney_anchor"),
    [
        pytest.param(True, Grade.UNVERIFIABLE, "nowhere", id="unlocatable-success-anchors"),
        pytest.param(False, Grade.IMPOSSIBLE, "london", id="unlocatable-failure-does-not"),
    ],
)
def test_an_unlocatable_login_still_occupies_time(
    nowhere_succeeded: bool, expected_sydney: Grade, sydney_anchor: str
) -> None:
    london = event("london", 0, LONDON, seq=1)
    nowhere = event("nowhere", MINUTE, None, seq=2, success=nowhere_succeeded)
    sydney = event("sydney", 2 * MINUTE, SYDNEY, seq=3)
    for settings in (NO_CONTROLS, SETTLED):
        verdicts = judge_timeline([sydney, london, nowhere], settings)
        assert verdicts["london"] == (Grade.NONE, None)
        assert verdicts["nowhere"][0] is Grade.UNVERIFIABLE  # never lowered by a control
        assert anchor_of(verdicts["sydney"]) == sydney_anchor
    assert judge_timeline([sydney, london, nowhere], NO_CONTROLS)["sydney"][0] is expected_sydney


def seed_events() -> tuple[TravelEvent, TravelEvent, TravelEvent]:
    first = event("200", 1514764800, WASHINGTON, seq=1, ip="206.81.252.200")
    second = event("42", 1514769200, ZHENGZHOU, seq=2, ip="42.222.21.19")
    late = event("7", 1514763200, WASHINGTON, seq=3, ip="206.81.252.7")
    return first, second, late


def test_out_of_order_arrival_reanchors_the_login_after_it() -> None:
    first, second, late = seed_events()
    before = judge_timeline([first, second], NO_CONTROLS)
    assert grades(before) == {"200": Grade.NONE, "42": Grade.IMPOSSIBLE}
    after = judge_timeline([first, second, late], NO_CONTROLS)
    assert grades(after) == {"7": Grade.NONE, "200": Grade.PLAUSIBLE, "42": Grade.IMPOSSIBLE}
    assert anchor_of(after["200"]) == "7"
    reasons = after["200"][1]
    assert reasons is not None and reasons["distance_km"] == 0.0
    assert after["42"] == before["42"]  # its anchor, 200, did not change
    # Washington r1000 and Zhengzhou r50 are 11,748 km apart: too far for the radii.
    reasons = after["42"][1]
    assert reasons is not None
    assert reasons["speed_mph"] == pytest.approx(5972.85, abs=0.01)
    assert reasons["adjusted_speed_mph"] == pytest.approx(5972.85 * (1 - 1050 / 11748.3), abs=1)


def test_duplicate_order_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="share an order key"):
        judge_timeline([event("a", 0, LONDON), event("b", 0, SYDNEY)], NO_CONTROLS)


# --- what the controls learn: successes only ---------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected", "control"),
    [
        pytest.param(NO_CONTROLS, Grade.IMPOSSIBLE, None, id="all-off"),
        pytest.param(settled(min_distance_km=200, known_location_radius_km=500),
                     Grade.PLAUSIBLE, Control.MIN_DISTANCE, id="min-distance-first"),
        pytest.param(settled(min_distance_km=0, known_location_radius_km=500),
                     Grade.PLAUSIBLE, Control.KNOWN_LOCATION, id="then-known-location"),
        pytest.param(settled(min_distance_km=0, known_location_radius_km=0,
                                    learning_logins=4),
                     Grade.SUSPICIOUS, Control.LEARNING, id="then-learning"),
        pytest.param(settled(min_distance_km=0, known_location_radius_km=0),
                     Grade.IMPOSSIBLE, None, id="3-successes-learnt"),
    ],
)  # fmt: skip
def test_controls_on_a_timeline(
    settings: TravelSettings, expected: Grade, control: Control | None
) -> None:
    # Three successes a day apart at (0, 0), then 100.08 km east a minute later: ~3731 mph.
    home = [event(f"home{i}", i * DAY, equator(0.0), seq=i) for i in range(3)]
    hop = event("hop", 2 * DAY + MINUTE, equator(0.9), seq=3)
    grade, reasons = judge_timeline([*home, hop], settings)["hop"]
    assert reasons is not None and reasons["raw_grade"] == "impossible"
    assert grade is expected
    assert reasons["lowered_by"] == (None if control is None else control.value)


def test_learning_counts_successes_in_event_order() -> None:
    # Fast hops between London and Sydney, arriving in reverse; e2 fails and does not count.
    places = [LONDON, SYDNEY, LONDON, LONDON, SYDNEY]
    outcomes = [True, True, False, True, True]
    events = [
        event(f"e{i}", 10 * MINUTE * i, p, seq=10 - i, success=s)
        for i, (p, s) in enumerate(zip(places, outcomes, strict=True))
    ]
    settings = NO_CONTROLS.model_copy(update={"learning_logins": 3})
    verdicts = judge_timeline(events, settings)
    # e1 was flagged (learning lowers it to suspicious), so it anchors nothing after it.
    assert [anchor_of(verdicts[f"e{i}"]) for i in range(5)] == [None, "e0", "e0", "e0", "e3"]
    assert [r["lowered_by"] if (r := verdicts[f"e{i}"][1]) else None for i in range(5)] == [
        None,  # e0: nothing to judge
        "learning",  # e1: 1 earlier success
        None,  # e2: London → London
        None,  # e3: the same
        None,  # e4: 3 earlier successes (e1 counts: it succeeded), learning is over
    ]
    assert verdicts["e1"][0] is Grade.SUSPICIOUS
    assert verdicts["e4"][0] is Grade.IMPOSSIBLE


@pytest.mark.parametrize(
    ("visit_minutes", "visit_succeeded", "expected", "control"),
    [
        # Two days after home: plausible, so trusted, so Sydney is known.
        pytest.param(2 * 24 * 60, True, Grade.PLAUSIBLE, "known_location", id="trusted-visit"),
        # A minute after home: flagged, so it proves nothing.
        pytest.param(1, True, Grade.IMPOSSIBLE, None, id="flagged-visit-is-not"),
        pytest.param(1, False, Grade.IMPOSSIBLE, None, id="failed-visit-is-not"),
    ],
)
def test_only_trusted_successes_make_a_place_known(
    visit_minutes: int, visit_succeeded: bool, expected: Grade, control: str | None
) -> None:
    settings = settled(min_distance_km=0, learning_logins=3)
    home = [event(f"home{i}", i * DAY, LONDON, seq=i) for i in range(4)]
    visit = event("visit", 3 * DAY + visit_minutes * MINUTE, SYDNEY, seq=4, success=visit_succeeded)
    back = event("back", 6 * DAY, LONDON, seq=5)
    again = event("again", 6 * DAY + MINUTE, SYDNEY, seq=6)
    verdicts = judge_timeline([*home, visit, back, again], settings)
    assert anchor_of(verdicts["again"]) == "back"
    grade, reasons = verdicts["again"]
    assert reasons is not None and reasons["raw_grade"] == "impossible"
    assert (grade, reasons["lowered_by"]) == (expected, control)


@pytest.mark.parametrize(
    ("middle_succeeded", "expected"),
    [
        pytest.param(True, None, id="three-successes-learnt"),
        pytest.param(False, "learning", id="a-failure-teaches-nothing"),
    ],
)
def test_only_successes_count_towards_learning(
    middle_succeeded: bool, expected: str | None
) -> None:
    settings = NO_CONTROLS.model_copy(update={"learning_logins": 3})
    events = [
        event("a", 0, LONDON, seq=1),
        event("b", DAY, LONDON, seq=2, success=middle_succeeded),
        event("c", 2 * DAY, LONDON, seq=3),
        event("far", 2 * DAY + MINUTE, SYDNEY, seq=4),
    ]
    reasons = judge_timeline(events, settings)["far"][1]
    assert reasons is not None and reasons["lowered_by"] == expected


def test_known_location_puts_the_flag_on_the_strangers_sign_in() -> None:
    home = [event(f"home{i}", DAY * i, LONDON, seq=i) for i in range(3)]
    stranger = event("stranger", DAY * 3, SYDNEY, seq=3)
    back = event("back", DAY * 3 + 10 * MINUTE, LONDON, seq=4)
    verdicts = judge_timeline([*home, stranger, back], SETTLED)
    assert verdicts["stranger"][0] is Grade.PLAUSIBLE  # a day is enough
    grade, reasons = verdicts["back"]
    assert grade is Grade.PLAUSIBLE and reasons is not None
    assert (reasons["raw_grade"], reasons["lowered_by"]) == ("impossible", "known_location")
    # Ten minutes after the last at home, the stranger's sign-in carries the flag.
    fast = replace(stranger, occurred_at=home[-1].occurred_at + timedelta(minutes=10))
    verdicts = judge_timeline([*home, fast, back], SETTLED)
    assert verdicts["stranger"][0] is Grade.IMPOSSIBLE
    assert verdicts["back"][0] is Grade.PLAUSIBLE


def test_a_late_success_changes_verdicts_beyond_the_logins_it_anchors() -> None:
    # With learning over after 2 successes, a late success before b turns b → c (whose anchor
    # is still b) from learning into impossible: re-judge every later login, not only the
    # ones the late success anchors.
    settings = NO_CONTROLS.model_copy(update={"learning_logins": 2})
    b, c = event("b", 1000, LONDON, seq=1), event("c", 1600, SYDNEY, seq=2)
    late = event("late", 0, LONDON, seq=3)
    before = judge_timeline([b, c], settings)
    after = judge_timeline([b, c, late], settings)
    assert grades(before) == {"b": Grade.NONE, "c": Grade.SUSPICIOUS}
    assert grades(after) == {"late": Grade.NONE, "b": Grade.PLAUSIBLE, "c": Grade.IMPOSSIBLE}
    assert anchor_of(before["c"]) == anchor_of(after["c"]) == "b"


def test_a_late_failure_changes_no_other_verdict() -> None:
    settings = settled(min_distance_km=0, known_location_radius_km=50, learning_logins=2)
    events = [event(f"e{i}", 600 * i, (LONDON, SYDNEY)[i % 2], seq=i) for i in range(5)]
    before = judge_timeline(events, settings)
    # London between e1 (Sydney, flagged) and e2 (London): judged from e0, the last trusted
    # success, and e2 still is too.
    failed = event("late", 900, LONDON, seq=9, success=False)
    after = judge_timeline([*events, failed], settings)
    assert {key: after[key] for key in before} == before
    assert anchor_of(after["late"]) == "e0"
    # The same login as a success is trusted (London → London): e2's anchor, and e2's verdict
    # changes.
    succeeded = judge_timeline([*events, replace(failed, success=True)], settings)
    assert anchor_of(succeeded["e2"]) == "late"
    assert {key for key in before if succeeded[key] != before[key]} == {"e2"}


# --- grading a suffix: anchor and history ------------------------------------------------


def test_suffix_judged_from_the_profile_of_what_came_before() -> None:
    events = [
        event(f"e{i}", 600 * i, (LONDON, SYDNEY)[i % 2], seq=i, success=i != 3) for i in range(6)
    ]
    settings = settled(learning_logins=2)
    full = judge_timeline(events, settings)
    before = Profile().judge(events[:4], settings)[1]
    suffix = judge_timeline(events[4:], settings, before)
    assert suffix == {key: full[key] for key in ("e4", "e5")}
    # Without it, the suffix is judged as if nothing came before.
    assert judge_timeline(events[4:], settings)["e4"] == (Grade.NONE, None)


@st.composite
def split_timelines(
    draw: st.DrawFn,
) -> tuple[list[TravelEvent], int, list[int]]:
    """A random timeline (failures, places missing, ties in time broken by arrival order),
    a split point in event order, and an order to pass the suffix in."""
    specs = draw(spec_lists(st.one_of(TIES, st.integers(0, 10**5)), unique=False, max_size=12))
    order = draw(st.permutations(range(len(specs))))
    ordered = sort_timeline(post(specs, order))
    split = draw(st.integers(0, len(ordered)))
    return ordered, split, draw(st.permutations(range(len(ordered) - split)))


@given(split_timelines(), settings_choices)
def test_grading_a_suffix_from_its_profile_equals_grading_it_all(
    timeline: tuple[list[TravelEvent], int, list[int]], settings: TravelSettings
) -> None:
    ordered, split, shuffle = timeline
    prefix, suffix = ordered[:split], ordered[split:]
    before = Profile().judge(prefix, settings)[1]
    full = judge_timeline(ordered, settings)
    graded = judge_timeline([suffix[i] for i in shuffle], settings, before)
    assert graded == {e.key: full[e.key] for e in suffix}
