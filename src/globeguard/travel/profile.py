"""A subject's login profile: everything grading needs of its past, in one small value. Pure.

Grading a login reads the subject's past: the anchor (last success), the history that feeds
the false-positive controls (success count, first success, places of the successes among the
latest ``KNOWN_PLACES_WINDOW`` events) and, for the Superman view, the latest event of any
outcome. Reading that from the stored events costs a window query over the subject's history
per login. A profile holds the same facts and moves forward one event at a time
(``Profile.after``), so a login later than all of its subject's stored ones — the common case —
is judged from one row.

A login arriving before the subject's newest stored event cannot use the profile (its past is
not "everything so far"); it is judged from the stored events, and the profile is then rebuilt
from those (``Profile.from_window``) and moved past the events that follow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from globeguard.settings import TravelSettings
from globeguard.travel.grading import Verdict, judge_lazily
from globeguard.travel.timeline import History, Place, TravelEvent

# Recent events a login is compared with for known places (Okta uses the last 20).
KNOWN_PLACES_WINDOW = 20
# Profiles carry no arrival numbers: every event they describe precedes any event judged
# against them, so their order only has to sort below those of events of the same instant.
PROFILE_ARRIVAL = 0


@dataclass(frozen=True, slots=True)
class Context:
    """What a subject's events before some point tell the grading of the events after it."""

    history: History = field(default_factory=History)
    anchor: TravelEvent | None = None
    latest: TravelEvent | None = None


@dataclass(frozen=True, slots=True)
class Slot:
    """One of the latest events, as far as known places care: did it succeed, and where."""

    success: bool
    place: Place | None = None


FAILURE = Slot(False)
UNLOCATED_SUCCESS = Slot(True)


def success_slot(place: Place | None) -> Slot:
    return UNLOCATED_SUCCESS if place is None else Slot(True, place)


@dataclass(frozen=True, slots=True)
class Profile:
    successes: int = 0
    first_success_at: datetime | None = None
    anchor: TravelEvent | None = None
    latest: TravelEvent | None = None
    # Newest first, at most KNOWN_PLACES_WINDOW.
    recent: tuple[Slot, ...] = ()

    def context(self) -> Context:
        history = History(self.successes, self.first_success_at, self.known_places())
        return Context(history, self.anchor, self.latest)

    def known_places(self) -> tuple[Place, ...]:
        """Places of the recent successes, each coordinate pair once, newest first."""
        return _known_places(self.recent)

    def after(self, event: TravelEvent) -> Profile:
        """The profile once `event`, later than every event it describes, is stored too."""
        slot = Slot(True, event.place) if event.success else FAILURE
        recent = (slot, *self.recent)[:KNOWN_PLACES_WINDOW]
        if not event.success:
            return Profile(self.successes, self.first_success_at, self.anchor, event, recent)
        first = self.first_success_at or event.occurred_at
        return Profile(self.successes + 1, first, event, event, recent)

    def judge(
        self,
        events: Sequence[TravelEvent],
        settings: TravelSettings,
        slot_of: Callable[[Place | None], Slot] = success_slot,
    ) -> tuple[dict[str, Verdict], Profile]:
        """Every event's verdict (`events` in event order, all later than this profile), each
        judged from the profile of everything before it — the same window of recent places a
        single login is judged by — and the profile after the last. `slot_of` gives the slot
        of a success at a place (a caller may hand out one per place, to share them)."""
        # `after` step by step, in local variables: a bulk batch judges thousands of logins,
        # and one Profile (and one History of known places) per login cost more than the
        # grading itself. The history is built only for the logins a control looks at.
        verdicts: dict[str, Verdict] = {}
        successes, first, anchor = self.successes, self.first_success_at, self.anchor
        latest, recent = self.latest, list(self.recent)
        for event in events:
            history_of = partial(_history, successes, first, recent)
            verdicts[event.key] = judge_lazily(event, anchor, history_of, settings)
            if event.success:
                recent.insert(0, slot_of(event.place))
                successes += 1
                first = first or event.occurred_at
                anchor = event
            else:
                recent.insert(0, FAILURE)
            del recent[KNOWN_PLACES_WINDOW:]
            latest = event
        return verdicts, Profile(successes, first, anchor, latest, tuple(recent))

    def as_stored(self) -> Profile:
        """This profile as reading its document back gives it (`from_doc(to_doc())`): the
        anchor and the latest event keep no arrival number there."""
        latest = _unnumbered(self.latest)
        anchor = latest if self.anchor is self.latest else _unnumbered(self.anchor)
        return Profile(self.successes, self.first_success_at, anchor, latest, self.recent)

    @staticmethod
    def from_window(
        rows: Sequence[Any], to_travel: Any, anchor: TravelEvent | None = None
    ) -> Profile:
        """From the window query's rows for one subject (newest first: the latest event and
        the successes among the latest KNOWN_PLACES_WINDOW events, each with its rank; the
        ranks not returned were failures). `anchor` is the last success when it is older
        than the window."""
        if not rows:
            return Profile()
        by_rank = {row.rank: row for row in rows}
        recent = tuple(_slot(by_rank.get(rank), to_travel) for rank in range(1, max(by_rank) + 1))
        successes = [row for row in rows if row.success]
        if successes:
            anchor = to_travel(successes[0])
        first = rows[0].first_success
        return Profile(
            successes=rows[0].successes,
            first_success_at=first,
            anchor=anchor,
            latest=to_travel(rows[0]),
            recent=recent[:KNOWN_PLACES_WINDOW],
        )

    # Storage: a compact JSON document, with exact ISO times (grading compares instants).

    def to_doc(self) -> dict[str, Any]:
        """`recent` lists, per slot, the index of its place in `places` (each distinct place
        once: a subject mostly signs in from a few) or -1 for a failure."""
        index: dict[Place, int] = {}
        # Slots mostly share Place objects (one per address and batch): looking them up by
        # identity first spares hashing a Place (five fields, in Python) for every slot.
        by_identity: dict[int, int] = {}
        recent = []
        for slot in self.recent:
            if not slot.success:
                recent.append(-1)
            elif (place := slot.place) is None:
                recent.append(-2)
            else:
                position = by_identity.get(id(place))
                if position is None:
                    position = by_identity[id(place)] = index.setdefault(place, len(index))
                recent.append(position)
        latest = _event_doc(self.latest)
        return {
            "successes": self.successes,
            "first_success_at": _iso(self.first_success_at),
            # Mostly one event (the last login succeeded): written out once.
            "anchor": latest if self.anchor is self.latest else _event_doc(self.anchor),
            "latest": latest,
            "places": [_place_doc(place) for place in index],
            "recent": recent,
        }

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> Profile:
        first = doc.get("first_success_at")
        places = [Place(*item) for item in doc["places"]]
        return Profile(
            successes=int(doc["successes"]),
            first_success_at=datetime.fromisoformat(first) if first else None,
            anchor=_event_of(doc.get("anchor")),
            latest=_event_of(doc.get("latest")),
            recent=tuple(_slot_at(places, i) for i in doc["recent"]),
        )


def _known_places(recent: Sequence[Slot]) -> tuple[Place, ...]:
    seen: dict[tuple[float, float], Place] = {}
    for slot in recent:
        if slot.success and slot.place is not None:
            seen.setdefault((slot.place.lat, slot.place.lon), slot.place)
    return tuple(seen.values())


def _history(successes: int, first: datetime | None, recent: Sequence[Slot]) -> History:
    return History(successes, first, _known_places(recent))


def _unnumbered(event: TravelEvent | None) -> TravelEvent | None:
    if event is None or event.arrival_seq == PROFILE_ARRIVAL:
        return event
    return TravelEvent(
        event.key, event.occurred_at, PROFILE_ARRIVAL, event.place, event.success, event.ip
    )


def _slot_at(places: Sequence[Place], index: int) -> Slot:
    if index == -1:
        return FAILURE
    if index == -2:
        return UNLOCATED_SUCCESS
    return Slot(True, places[index])


def _slot(row: Any, to_travel: Any) -> Slot:
    if row is None or not row.success:
        return FAILURE
    return Slot(True, to_travel(row).place)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _place_doc(place: Place | None) -> list[Any] | None:
    if place is None:
        return None
    return [place.lat, place.lon, place.radius_km, place.country, place.city]


def _place_of(doc: list[Any] | None) -> Place | None:
    return None if doc is None else Place(*doc)


def _event_doc(event: TravelEvent | None) -> list[Any] | None:
    if event is None:
        return None
    return [
        event.key,
        event.occurred_at.isoformat(),
        event.success,
        event.ip,
        _place_doc(event.place),
    ]


def _event_of(doc: list[Any] | None) -> TravelEvent | None:
    if doc is None:
        return None
    key, at, success, ip, place = doc
    return TravelEvent(
        key, datetime.fromisoformat(at), PROFILE_ARRIVAL, _place_of(place), success, ip
    )
