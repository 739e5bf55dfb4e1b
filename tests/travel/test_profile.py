"""The login profile: what it remembers (trusted places and networks, recurrence, memory),
that a rebuilt profile equals one moved forward, and that it survives its JSON storage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.settings import TravelSettings
from globeguard.travel.detect import Control, Grade
from globeguard.travel.profile import (
    MAX_PLACES,
    PROFILE_ARRIVAL,
    Profile,
    is_trusted,
    judge_timeline,
)
from globeguard.travel.timeline import Place, TravelEvent
from tests.travel.factories import KASSEL, LONDON, SYDNEY, WITH_CONTROLS, at, event, places

HOUR, DAY = 3_600, 86_400
# Learning off, so that each case shows one control at a time.
SETTINGS = TravelSettings(learning_logins=0, learning_period=timedelta(0))
TOKYO = Place(35.6895, 139.6917, 20, "JP", "Tokyo")


def judged(events: Sequence[TravelEvent], settings: TravelSettings = SETTINGS) -> Profile:
    return Profile().judge(events, settings)[1]


@st.composite
def histories(draw: st.DrawFn, longest: int = 45) -> list[TravelEvent]:
    count = draw(st.integers(0, longest))
    gaps = draw(st.lists(st.integers(0, 50_000), min_size=count, max_size=count))
    events, now = [], 1_700_000_000
    for index, gap in enumerate(gaps):
        now += gap
        review = draw(st.sampled_from([None, None, None, "safe", "compromised"]))
        events.append(
            TravelEvent(
                f"e{index}",
                at(now),
                index + 1,
                draw(places),
                draw(st.booleans()),
                f"10.0.0.{index}",
                draw(st.sampled_from([None, 64500, 64501])),
                review,
            )
        )
    return events


def moved_forward(events: Sequence[TravelEvent], settings: TravelSettings) -> Profile:
    return Profile().judge(events, settings)[1]


def same_event(a: TravelEvent | None, b: TravelEvent | None) -> bool:
    if a is None or b is None:
        return a is b
    return replace(a, arrival_seq=0) == replace(b, arrival_seq=0)


@given(histories())
def test_storage_round_trip_keeps_every_fact(events: list[TravelEvent]) -> None:
    profile = moved_forward(events, WITH_CONTROLS)
    again = Profile.from_doc(profile.to_doc())
    assert again is not None
    assert (again.successes, again.first_success_at) == (
        profile.successes,
        profile.first_success_at,
    )
    assert again.places == profile.places
    assert again.networks == profile.networks
    assert same_event(again.anchor, profile.anchor)
    assert same_event(again.latest, profile.latest)
    for stored in (again.anchor, again.latest):
        assert stored is None or stored.arrival_seq == PROFILE_ARRIVAL


@given(histories(), st.integers(0, 999_999))
def test_the_stored_text_writes_every_time_as_its_iso_text(
    events: list[TravelEvent], microseconds: int
) -> None:
    """The text orjson writes from the times themselves is the text of their `isoformat()`
    (the shape stored profiles have always had), with or without microseconds."""
    shift = timedelta(microseconds=microseconds)
    shifted = [replace(e, occurred_at=e.occurred_at + shift) for e in events]
    profile = moved_forward(shifted, WITH_CONTROLS)
    doc = orjson.loads(profile.to_text())

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    assert doc["first_success_at"] == iso(profile.first_success_at)
    assert [m[1:3] for m in doc["places"]] == [
        [m.first_seen.isoformat(), m.last_seen.isoformat()] for m in profile.places
    ]
    assert doc["networks"] == [[asn, seen.isoformat()] for asn, seen in profile.networks]
    for stored, kept in ((doc["latest"], profile.latest), (doc["anchor"], profile.anchor)):
        if stored not in (None, "latest"):
            assert kept is not None and stored[1] == kept.occurred_at.isoformat()
    assert profile.to_doc() == doc


def test_a_document_of_another_shape_is_not_read() -> None:
    old = {"successes": 3, "first_success_at": None, "places": [], "recent": [0, -1]}
    assert Profile.from_doc(old) is None


@given(histories())
def test_a_profile_replayed_from_stored_verdicts_equals_one_moved_forward(
    events: list[TravelEvent],
) -> None:
    """How the stored events rebuild a profile (service.replayed_profiles): the same fold
    over the same events, with the verdicts they were given."""
    verdicts, moved = Profile().judge(events, WITH_CONTROLS)
    replayed = Profile().replayed([(e, verdicts[e.key][0]) for e in events], WITH_CONTROLS)
    assert replayed == moved


@given(histories(), histories(longest=10))
def test_judging_from_a_stored_profile_equals_judging_in_one_go(
    past: list[TravelEvent], later: list[TravelEvent]
) -> None:
    """The bulk path judges new logins from the stored profile of their past: the verdicts
    are those of judging past and new logins together."""
    last = past[-1].occurred_at.timestamp() if past else 0
    shifted = [
        replace(e, key=f"n{e.key}", occurred_at=at(last + 1 + i * 60), arrival_seq=10_000 + i)
        for i, e in enumerate(later)
    ]
    whole, _ = Profile().judge([*past, *shifted], WITH_CONTROLS)
    stored = Profile.from_doc(moved_forward(past, WITH_CONTROLS).to_doc())
    assert stored is not None
    split, _ = stored.judge(shifted, WITH_CONTROLS)
    assert split == {e.key: whole[e.key] for e in shifted}


@pytest.mark.parametrize(
    ("grade", "review", "trusted"),
    [
        (Grade.NONE, None, True),
        (Grade.PLAUSIBLE, None, True),
        (Grade.UNVERIFIABLE, None, True),
        (Grade.SUSPICIOUS, None, False),
        (Grade.IMPOSSIBLE, None, False),
        (Grade.IMPOSSIBLE, "safe", True),
        (Grade.PLAUSIBLE, "compromised", False),
        (Grade.IMPOSSIBLE, "compromised", False),
    ],
)
def test_what_makes_a_success_trusted(grade: Grade, review: str | None, trusted: bool) -> None:
    assert is_trusted(grade, review) is trusted


def test_an_attackers_flagged_success_does_not_vouch_for_the_next_one() -> None:
    home = [event(f"home{i}", i * DAY, LONDON, seq=i + 1) for i in range(3)]
    attack = event("attack", 2 * DAY + HOUR, TOKYO, seq=10)
    # The user again, then the attacker back from the same city two days later.
    back_home = event("back", 3 * DAY, LONDON, seq=11)
    again = event("again", 4 * DAY + HOUR, LONDON, seq=12)
    second = event("second", 4 * DAY + 2 * HOUR, TOKYO, seq=13)
    verdicts = judge_timeline([*home, attack, back_home, again, second], SETTINGS)
    assert verdicts["attack"][0] is Grade.IMPOSSIBLE
    assert verdicts["back"][0] is Grade.PLAUSIBLE
    # Judged from the user's last trusted sign-in, and Tokyo is not a known place.
    grade, reasons = verdicts["second"]
    assert grade is Grade.IMPOSSIBLE
    assert reasons is not None and reasons["earlier"] == "again"


def test_the_anchor_is_the_last_trusted_success() -> None:
    home = event("home", 0, LONDON, seq=1)
    attack = event("attack", HOUR, TOKYO, seq=2)
    # An hour after the attacker, from the attacker's city: measured from home, not from it.
    follow = event("follow", 2 * HOUR, TOKYO, seq=3)
    verdicts = judge_timeline([home, attack, follow], SETTINGS)
    assert verdicts["follow"][1] is not None
    assert verdicts["follow"][1]["earlier"] == "home"
    assert verdicts["follow"][0] is Grade.IMPOSSIBLE


def test_a_flagged_place_becomes_known_after_recurring_on_distinct_days() -> None:
    """A VPN exit or a carrier hub the user keeps using: known on its third day."""
    settings = SETTINGS.model_copy(update=dict(known_place_days=3))
    events, seq = [], 1
    for day in range(4):
        events.append(event(f"home{day}", day * DAY, LONDON, seq=seq))
        events.append(event(f"vpn{day}", day * DAY + 600, TOKYO, seq=seq + 1))
        seq += 2
    verdicts = judge_timeline(events, settings)
    assert [verdicts[f"vpn{d}"][0] for d in range(4)] == [
        Grade.IMPOSSIBLE,
        Grade.IMPOSSIBLE,
        Grade.IMPOSSIBLE,
        Grade.PLAUSIBLE,
    ]
    assert verdicts["vpn3"][1] is not None
    assert verdicts["vpn3"][1]["lowered_by"] == Control.KNOWN_LOCATION


def test_several_sign_ins_on_one_day_are_one_day() -> None:
    settings = SETTINGS.model_copy(update=dict(known_place_days=2))
    home = event("home", 0, LONDON, seq=1)
    hops = [event(f"hop{i}", 600 + i * 60, TOKYO, seq=2 + i) for i in range(5)]
    back = event("back", 3 * HOUR, LONDON, seq=10)
    next_hop = event("next", 3 * HOUR + 600, TOKYO, seq=11)
    verdicts = judge_timeline([home, *hops, back, next_hop], settings)
    assert verdicts["next"][0] is Grade.IMPOSSIBLE


def test_a_compromised_review_stops_a_place_from_becoming_known_by_recurrence() -> None:
    settings = SETTINGS.model_copy(update=dict(known_place_days=2))
    home = event("home", 0, LONDON, seq=1)
    attack = replace(event("attack", 600, TOKYO, seq=2), review="compromised")
    home2 = event("home2", DAY, LONDON, seq=3)
    attack2 = event("attack2", DAY + 600, TOKYO, seq=4)
    home3 = event("home3", 2 * DAY, LONDON, seq=5)
    attack3 = event("attack3", 2 * DAY + 600, TOKYO, seq=6)
    verdicts = judge_timeline([home, attack, home2, attack2, home3, attack3], settings)
    assert verdicts["attack3"][0] is Grade.IMPOSSIBLE


def test_a_safe_review_makes_the_place_known_at_once() -> None:
    home = event("home", 0, LONDON, seq=1)
    vpn = replace(event("vpn", 600, TOKYO, seq=2), review="safe")
    home2 = event("home2", HOUR, LONDON, seq=3)
    vpn2 = event("vpn2", HOUR + 600, TOKYO, seq=4)
    verdicts = judge_timeline([home, vpn, home2, vpn2], SETTINGS)
    assert verdicts["vpn"][0] is Grade.IMPOSSIBLE  # a review changes no verdict given
    assert verdicts["vpn2"][0] is Grade.PLAUSIBLE


def test_a_network_is_known_only_through_a_trusted_success() -> None:
    carrier = 64_500
    home = event("home", 0, LONDON, seq=1)
    # The first hop through the carrier is flagged: the carrier proves nothing yet.
    hop = replace(event("hop", 600, KASSEL, seq=2), asn=carrier)
    # A morning sign-in through the carrier, long after: plausible, so trusted.
    morning = replace(event("morning", DAY, KASSEL, seq=3), asn=carrier)
    home2 = event("home2", DAY + HOUR, LONDON, seq=4)
    # The carrier's addresses now geolocate to Tokyo (another hub): at most suspicious.
    far_hub = replace(event("far", DAY + HOUR + 600, TOKYO, seq=5), asn=carrier)
    settings = SETTINGS.model_copy(update=dict(min_distance_km=0, known_place_days=0))
    verdicts = judge_timeline([home, hop, morning, home2, far_hub], settings)
    assert verdicts["hop"][0] is Grade.IMPOSSIBLE
    assert verdicts["far"][0] is Grade.SUSPICIOUS
    assert verdicts["far"][1] is not None
    assert verdicts["far"][1]["lowered_by"] == Control.KNOWN_NETWORK
    assert verdicts["far"][1]["raw_grade"] == Grade.IMPOSSIBLE


def test_places_unused_for_the_memory_are_forgotten() -> None:
    settings = SETTINGS.model_copy(update=dict(known_place_memory=timedelta(days=30)))
    tokyo = event("tokyo", 0, TOKYO, seq=1)
    home = event("home", 40 * DAY, LONDON, seq=2)
    back = event("back", 40 * DAY + 600, TOKYO, seq=3)
    verdicts = judge_timeline([tokyo, home, back], settings)
    assert verdicts["back"][0] is Grade.IMPOSSIBLE
    remembered = settings.model_copy(update=dict(known_place_memory=timedelta(days=60)))
    assert judge_timeline([tokyo, home, back], remembered)["back"][0] is Grade.PLAUSIBLE


def test_learning_lowers_one_grade_so_an_early_takeover_still_raises_a_flag() -> None:
    settings = TravelSettings(learning_logins=5)
    home = event("home", 0, LONDON, seq=1)
    attack = event("attack", 600, TOKYO, seq=2)
    grade, reasons = judge_timeline([home, attack], settings)["attack"]
    assert grade is Grade.SUSPICIOUS
    assert reasons is not None and reasons["lowered_by"] == Control.LEARNING


def test_failures_teach_no_place_and_never_anchor() -> None:
    profile = judged([event("home", 0, KASSEL, seq=1)])
    for index in range(30):
        failure = event(f"f{index}", 10 + index, SYDNEY, seq=2 + index, success=False)
        profile = profile.after(failure, Grade.IMPOSSIBLE, SETTINGS)
    assert profile.known_places(at(100), SETTINGS) == (KASSEL,)
    assert profile.anchor is not None and profile.anchor.key == "home"
    assert profile.latest is not None and profile.latest.key == "f29"
    assert profile.successes == 1


def test_nearby_sign_ins_are_one_place_with_counts_and_days() -> None:
    near_london = Place(51.55, -0.2, 20, "GB", "London")
    events = [
        event("a", 0, LONDON, seq=1),
        event("b", HOUR, near_london, seq=2),
        event("c", DAY, LONDON, seq=3),
    ]
    (memory,) = judged(events).places
    assert memory.place == LONDON
    assert (memory.count, memory.days, memory.trusted) == (3, 2, True)
    assert (memory.first_seen, memory.last_seen) == (at(0), at(DAY))


def test_a_profile_remembers_a_bounded_number_of_places() -> None:
    events = [
        event(f"p{i}", i * DAY, Place(-60 + i * 3, (i * 7) % 360 - 180), seq=i + 1)
        for i in range(MAX_PLACES + 5)
    ]
    profile = judged(events)
    assert len(profile.places) == MAX_PLACES
    # The least recently used went first.
    assert profile.places[0].place == events[5].place
