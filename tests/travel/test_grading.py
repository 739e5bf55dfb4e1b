"""Failed attempts are judged but never vouch for the next login."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from globeguard.settings import TravelSettings
from globeguard.travel.grading import judge_timeline
from globeguard.travel.timeline import Place, TravelEvent

NY, LONDON = Place(40.7128, -74.006, 5), Place(51.5074, -0.1278, 5)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SETTINGS = TravelSettings(learning_logins=0)


def login(key, minutes, place, success=True, seq=0):
    return TravelEvent(key, T0 + timedelta(minutes=minutes), seq, place, success)


def test_a_failed_try_from_the_new_place_does_not_vouch_for_the_next_login():
    verdicts = judge_timeline(
        [login("home", 0, NY), login("try", 10, LONDON, success=False),
         login("in", 11, LONDON)],
        SETTINGS,
    )
    assert verdicts["try"][0] == "impossible"
    assert verdicts["in"][0] == "impossible"  # still measured from New York
    assert verdicts["in"][1]["earlier"] == "home"


def test_successes_anchor_the_next_journey():
    verdicts = judge_timeline(
        [login("a", 0, NY), login("b", 600, LONDON), login("c", 601, LONDON)], SETTINGS
    )
    assert [verdicts[k][0] for k in "abc"] == ["none", "plausible", "plausible"]


def test_order_of_input_does_not_matter():
    events = [login("a", 0, NY, seq=1), login("b", 10, LONDON, seq=2),
              login("c", 20, NY, success=False, seq=3)]
    assert judge_timeline(events, SETTINGS) == judge_timeline(events[::-1], SETTINGS)
