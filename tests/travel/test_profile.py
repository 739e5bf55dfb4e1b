"""The login profile: moving it forward event by event must tell grading exactly what reading
the stored events would (the window path), and survive its JSON storage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from globeguard.travel.grading import judge
from globeguard.travel.profile import KNOWN_PLACES_WINDOW, PROFILE_ARRIVAL, Profile, Slot
from globeguard.travel.timeline import History, Place, TravelEvent
from tests.travel.factories import KASSEL, LONDON, SYDNEY, WITH_CONTROLS, at, event, places


@dataclass(frozen=True)
class Row:
    """A window-query row (see LoginEventRepository.context_before)."""

    rank: int
    success: bool
    successes: int
    first_success: datetime | None
    event: TravelEvent


def moved_forward(events: Sequence[TravelEvent]) -> Profile:
    return reduce(Profile.after, events, Profile())


def to_travel(row: Row) -> TravelEvent:
    return row.event


def window_rows(events: Sequence[TravelEvent]) -> list[Row]:
    """What the window query returns for these events (in event order): the latest, and the
    successes among the latest KNOWN_PLACES_WINDOW, newest first."""
    successes = [e for e in events if e.success]
    first = successes[0].occurred_at if successes else None
    newest_first = list(reversed(events))[:KNOWN_PLACES_WINDOW]
    return [
        Row(rank, e.success, len(successes), first, e)
        for rank, e in enumerate(newest_first, start=1)
        if rank == 1 or e.success
    ]


def expected_context(events: Sequence[TravelEvent]) -> tuple[History, Any, Any]:
    """Straight from the definitions: every success counts; known places come from the
    successes among the latest KNOWN_PLACES_WINDOW events."""
    successes = [e for e in events if e.success]
    recent = list(reversed(events))[:KNOWN_PLACES_WINDOW]
    places: dict[tuple[float, float], Place] = {}
    for e in recent:
        if e.success and e.place is not None:
            places.setdefault((e.place.lat, e.place.lon), e.place)
    history = History(
        len(successes), successes[0].occurred_at if successes else None, tuple(places.values())
    )
    return history, successes[-1] if successes else None, events[-1] if events else None


@st.composite
def histories(draw: st.DrawFn, longest: int = 45) -> list[TravelEvent]:
    count = draw(st.integers(0, longest))
    gaps = draw(st.lists(st.integers(0, 50_000), min_size=count, max_size=count))
    events, now = [], 1_700_000_000
    for index, gap in enumerate(gaps):
        now += gap
        events.append(
            event(
                f"e{index}",
                now,
                draw(places),
                seq=index + 1,
                success=draw(st.booleans()),
                ip=f"10.0.0.{index}",
            )
        )
    return events


def same_event(a: TravelEvent | None, b: TravelEvent | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.key, a.occurred_at, a.place, a.success, a.ip) == (
        b.key,
        b.occurred_at,
        b.place,
        b.success,
        b.ip,
    )


@given(histories())
def test_moving_forward_gives_the_context_the_events_define(events: list[TravelEvent]) -> None:
    context = moved_forward(events).context()
    history, anchor, latest = expected_context(events)
    assert context.history == history
    assert same_event(context.anchor, anchor)
    assert same_event(context.latest, latest)


@given(histories())
def test_a_profile_read_from_the_window_equals_one_moved_forward(
    events: list[TravelEvent],
) -> None:
    moved = moved_forward(events)
    # The window path looks up an anchor older than the window itself.
    old_anchor = next((e for e in reversed(events) if e.success), None)
    read = Profile.from_window(window_rows(events), to_travel, old_anchor)
    assert read.context().history == moved.context().history
    assert same_event(read.anchor, moved.anchor)
    assert same_event(read.latest, moved.latest)
    # And both keep moving forward alike.
    more = event("next", 1_800_000_000, LONDON, seq=999)
    assert read.after(more).context().history == moved.after(more).context().history


@given(histories())
def test_storage_round_trip_keeps_every_fact(events: list[TravelEvent]) -> None:
    profile = moved_forward(events)
    again = Profile.from_doc(profile.to_doc())
    assert again.context().history == profile.context().history
    assert same_event(again.anchor, profile.anchor)
    assert same_event(again.latest, profile.latest)
    assert again.recent == profile.recent
    for stored in (again.anchor, again.latest):
        assert stored is None or stored.arrival_seq == PROFILE_ARRIVAL


@given(histories())
def test_each_login_is_judged_by_the_window_before_it(events: list[TravelEvent]) -> None:
    """The oracle, straight from the definitions: a login's anchor is the last success before
    it, its known places those of the successes among the latest KNOWN_PLACES_WINDOW events
    before it."""
    verdicts, _ = Profile().judge(events, WITH_CONTROLS)
    for index, current in enumerate(events):
        history, anchor, _ = expected_context(events[:index])
        assert verdicts[current.key] == judge(current, anchor, history, WITH_CONTROLS)


@given(histories(), histories(longest=10))
def test_judging_from_a_stored_profile_equals_judging_in_one_go(
    past: list[TravelEvent], later: list[TravelEvent]
) -> None:
    """The bulk path judges new logins from the stored profile of their past: the verdicts
    are those of judging past and new logins together."""
    last = past[-1].occurred_at.timestamp() if past else 0
    shifted = [
        TravelEvent(f"n{e.key}", at(last + 1 + i * 60), 10_000 + i, e.place, e.success, e.ip)
        for i, e in enumerate(later)
    ]
    whole, _ = Profile().judge([*past, *shifted], WITH_CONTROLS)
    stored = Profile.from_doc(moved_forward(past).to_doc())
    split, _ = stored.judge(shifted, WITH_CONTROLS)
    assert split == {e.key: whole[e.key] for e in shifted}


def test_failures_fill_the_window_but_teach_no_place() -> None:
    profile = Profile().after(event("home", 0, KASSEL, seq=1))
    for index in range(KNOWN_PLACES_WINDOW - 1):
        failure = event(f"f{index}", 10 + index, SYDNEY, seq=2 + index, success=False)
        profile = profile.after(failure)
    assert profile.known_places() == (KASSEL,)
    assert profile.recent[0] == Slot(False)  # a failure's place is not kept
    pushed_out = profile.after(event("last-failure", 100, SYDNEY, seq=50, success=False))
    assert pushed_out.known_places() == ()
    assert pushed_out.anchor is not None and pushed_out.anchor.key == "home"
    assert pushed_out.successes == 1
